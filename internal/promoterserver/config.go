package promoterserver

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	yaml "go.yaml.in/yaml/v3"

	"github.com/slipway-deploy/slipway/internal/chartsrepo"
	"github.com/slipway-deploy/slipway/internal/gitauth"
	"github.com/slipway-deploy/slipway/internal/gitwriter"
	"github.com/slipway-deploy/slipway/internal/promotion"
	"github.com/slipway-deploy/slipway/internal/release"
	"github.com/slipway-deploy/slipway/internal/tagfile"
)

// File is the --config file as written (see plugin/promoter.example.yaml).
type File struct {
	Repo struct {
		URL          string `yaml:"url"`
		Branch       string `yaml:"branch"`
		Strategy     string `yaml:"strategy"`
		PathTemplate string `yaml:"pathTemplate"`
		HoldsFile    string `yaml:"holdsFile"`
	} `yaml:"repo"`
	Environments   []string `yaml:"environments"`
	ReleasePattern string   `yaml:"releasePattern"`
	Git            struct {
		AuthorName   string `yaml:"authorName"`
		AuthorEmail  string `yaml:"authorEmail"`
		TokenFile    string `yaml:"tokenFile"`
		Username     string `yaml:"username"`
		SSHKeyFile   string `yaml:"sshKeyFile"`
		KnownHosts   string `yaml:"knownHosts"`
		MaxAttempts  int    `yaml:"maxAttempts"`
		HistoryDepth int    `yaml:"historyDepth"`
	} `yaml:"git"`
	Freezes          map[string]FreezeFile `yaml:"freezes"`
	Soak             map[string]string     `yaml:"soak"`
	DecisionDeadline string                `yaml:"decisionDeadline"`
	MaxRequeue       string                `yaml:"maxRequeue"`
	Timeout          string                `yaml:"timeout"`
	ReplyBudget      string                `yaml:"replyBudget"`
	MaxBodyBytes     int64                 `yaml:"maxBodyBytes"`
}

// FreezeFile is one environment's freezes as written.
type FreezeFile struct {
	Timezone string `yaml:"timezone"`
	Weekly   []struct {
		From string `yaml:"from"`
		To   string `yaml:"to"`
	} `yaml:"weekly"`
	Dates []struct {
		From string `yaml:"from"`
		To   string `yaml:"to"`
	} `yaml:"dates"`
}

// Config is a validated configuration.
type Config struct {
	File     File
	Layout   *chartsrepo.Layout
	Policy   promotion.Policy
	Strategy gitwriter.Strategy
	// Timeout bounds one promotion's git work; ReplyBudget is the longest a
	// request waits for it before answering Running (Argo's agent gives up
	// on a call after 30 seconds).
	Timeout      time.Duration
	ReplyBudget  time.Duration
	MaxBodyBytes int64
}

// GitAuth are the config's git settings, named by their keys for errors
// (the flags laid over them name themselves).
func (c *Config) GitAuth() gitauth.Options {
	g := c.File.Git
	return gitauth.Options{TokenFile: g.TokenFile, Username: g.Username, SSHKeyFile: g.SSHKeyFile, KnownHosts: g.KnownHosts,
		Names: gitauth.Names{Repo: "repo.url", TokenFile: "git.tokenFile", Username: "git.username",
			SSHKeyFile: "git.sshKeyFile", KnownHosts: "git.knownHosts"}}
}

// AgentTimeout is how long Argo's agent waits for a plugin's reply.
const AgentTimeout = 30 * time.Second

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --config: %w", err)
	}
	cfg, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseConfig validates a config; unknown keys are errors (a typo must not
// silently drop a freeze).
func ParseConfig(b []byte) (*Config, error) {
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if f.Repo.URL == "" {
		return nil, fmt.Errorf("repo.url is required")
	}
	if f.Repo.Branch == "" {
		f.Repo.Branch = "main"
	}
	c := &Config{File: f, Strategy: gitwriter.Strategy(f.Repo.Strategy)}
	switch c.Strategy {
	case "":
		c.Strategy = gitwriter.Direct
	case gitwriter.Direct, gitwriter.Branch:
	default:
		return nil, fmt.Errorf("repo.strategy %q: want direct or branch", f.Repo.Strategy)
	}
	layout, err := chartsrepo.NewLayout(f.Repo.PathTemplate, strings.Join(f.Environments, ","), tagfile.DefaultKeys)
	if err != nil {
		return nil, err
	}
	if err := layout.SetHoldsFile(f.Repo.HoldsFile); err != nil {
		return nil, fmt.Errorf("repo.holdsFile: %w", err)
	}
	c.Layout = layout
	rel, err := release.NewPolicy(f.ReleasePattern)
	if err != nil {
		return nil, err
	}
	c.Policy = promotion.Policy{Releases: rel, Next: layout.Next, Freezes: map[string]*promotion.Freeze{}, Soak: map[string]time.Duration{}}
	for env, ff := range f.Freezes {
		if _, err := layout.ParseEnv(env); err != nil {
			return nil, fmt.Errorf("freezes: %w", err)
		}
		fr, err := parseFreeze(ff)
		if err != nil {
			return nil, fmt.Errorf("freezes.%s: %w", env, err)
		}
		c.Policy.Freezes[env] = fr
	}
	for env, s := range f.Soak {
		if _, err := layout.ParseEnv(env); err != nil {
			return nil, fmt.Errorf("soak: %w", err)
		}
		d, err := duration("soak."+env, s, 0)
		if err != nil {
			return nil, err
		}
		c.Policy.Soak[env] = d
	}
	if c.Policy.Deadline, err = duration("decisionDeadline", f.DecisionDeadline, 72*time.Hour); err != nil {
		return nil, err
	}
	if c.Policy.MaxRequeue, err = duration("maxRequeue", f.MaxRequeue, 5*time.Minute); err != nil {
		return nil, err
	}
	if c.Timeout, err = duration("timeout", f.Timeout, 2*time.Minute); err != nil {
		return nil, err
	}
	if c.Policy.MaxRequeue <= 0 || c.Timeout <= 0 {
		return nil, fmt.Errorf("maxRequeue and timeout must be positive")
	}
	if c.ReplyBudget, err = duration("replyBudget", f.ReplyBudget, 20*time.Second); err != nil {
		return nil, err
	}
	if c.ReplyBudget <= 0 || c.ReplyBudget > AgentTimeout-5*time.Second {
		return nil, fmt.Errorf("replyBudget %s: want more than 0 and at most %s (Argo's agent waits %s for a reply)",
			c.ReplyBudget, AgentTimeout-5*time.Second, AgentTimeout)
	}
	c.MaxBodyBytes = f.MaxBodyBytes
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 1 << 20
	}
	if f.Git.MaxAttempts < 0 || f.Git.HistoryDepth < 0 {
		return nil, fmt.Errorf("git.maxAttempts and git.historyDepth must not be negative")
	}
	return c, nil
}

func duration(name, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration such as 30m or 72h", name, s)
	}
	return d, nil
}

func parseFreeze(ff FreezeFile) (*promotion.Freeze, error) {
	tz := ff.Timezone
	if tz == "" {
		tz = "UTC"
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("timezone %q: %w", tz, err)
	}
	fr := &promotion.Freeze{Location: loc}
	for i, w := range ff.Weekly {
		start, end, err := parsePair(fmt.Sprintf("weekly[%d]", i), w.From, w.To, promotion.ParseWeekTime)
		if err != nil {
			return nil, err
		}
		if start == end {
			return nil, fmt.Errorf("weekly[%d]: from and to are the same time", i)
		}
		fr.Weekly = append(fr.Weekly, promotion.WeeklyWindow{Start: start, End: end})
	}
	for i, d := range ff.Dates {
		from, to, err := parsePair(fmt.Sprintf("dates[%d]", i), d.From, d.To, promotion.ParseDate)
		if err != nil {
			return nil, err
		}
		if to.String() < from.String() {
			return nil, fmt.Errorf("dates[%d]: to %s is before from %s", i, to, from)
		}
		fr.Dated = append(fr.Dated, promotion.DatedWindow{From: from, To: to})
	}
	return fr, nil
}

// parsePair parses the from and to of one window, naming the bad one.
func parsePair[T any](name, from, to string, parse func(string) (T, error)) (T, T, error) {
	var zero T
	a, err := parse(from)
	if err != nil {
		return zero, zero, fmt.Errorf("%s.from: %w", name, err)
	}
	b, err := parse(to)
	if err != nil {
		return zero, zero, fmt.Errorf("%s.to: %w", name, err)
	}
	return a, b, nil
}
