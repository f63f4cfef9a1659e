package smoke

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/tidwall/gjson"

	"github.com/slipway-deploy/slipway/internal/smokespec"
)

// evaluate returns one "expected vs got" line for every expectation the
// response breaks; none means the check passed.
func evaluate(e smokespec.Expect, resp *http.Response, body []byte, latency time.Duration) []string {
	var fails []string
	failf := func(format string, args ...any) { fails = append(fails, fmt.Sprintf(format, args...)) }

	if !statusOK(e.Status, resp.StatusCode) {
		failf("status: expected %s, got %d", statusList(e.Status), resp.StatusCode)
	}
	for _, s := range e.BodyContains {
		if !bytes.Contains(body, []byte(s)) {
			failf("body_contains: %q not in the body", s)
		}
	}
	for _, s := range e.BodyNotContains {
		if bytes.Contains(body, []byte(s)) {
			failf("body_not_contains: %q is in the body", s)
		}
	}
	if e.BodyRegex != nil && !e.BodyRegex.Match(body) {
		failf("body_regex: /%s/ does not match the body", e.BodyRegex)
	}
	for _, h := range e.Header {
		values, ok := resp.Header[http.CanonicalHeaderKey(h.Name)]
		if !ok {
			failf("header %s: expected /%s/, got no such header", h.Name, h.Regex)
			continue
		}
		if !anyMatch(h.Regex.MatchString, values) {
			failf("header %s: expected /%s/, got %q", h.Name, h.Regex, strings.Join(values, ", "))
		}
	}
	if len(e.JSON) > 0 {
		if !gjson.ValidBytes(body) {
			failf("json: the body is not JSON")
		} else {
			for _, j := range e.JSON {
				got := gjson.GetBytes(body, j.Path)
				if !got.Exists() {
					failf("json %s: expected %s, got nothing at that path", j.Path, jsonText(j.Want))
					continue
				}
				if !reflect.DeepEqual(got.Value(), j.Want) {
					failf("json %s: expected %s, got %s", j.Path, jsonText(j.Want), got.Raw)
				}
			}
		}
	}
	if e.MaxLatency > 0 && latency > e.MaxLatency {
		failf("max_latency: expected at most %s, got %s", e.MaxLatency, roundDuration(latency))
	}
	if e.RedirectTo != "" {
		if got := landedAt(e.FollowRedirects, resp); got != e.RedirectTo {
			if got == "" {
				got = "no Location header"
			}
			failf("redirect_to: expected %s, got %s", e.RedirectTo, got)
		}
	}
	return fails
}

// landedAt is where the response sends the client: the resolved Location
// when redirects are not followed, the final URL when they are.
func landedAt(followed bool, resp *http.Response) string {
	if followed {
		return resp.Request.URL.String()
	}
	loc, err := resp.Location()
	if err != nil {
		return ""
	}
	return loc.String()
}

func statusOK(ranges []smokespec.StatusRange, code int) bool {
	for _, r := range ranges {
		if code >= r.Min && code <= r.Max {
			return true
		}
	}
	return false
}

func statusList(ranges []smokespec.StatusRange) string {
	parts := make([]string, len(ranges))
	for i, r := range ranges {
		parts[i] = r.String()
	}
	return strings.Join(parts, " or ")
}

func anyMatch(match func(string) bool, values []string) bool {
	for _, v := range values {
		if match(v) {
			return true
		}
	}
	return false
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
