package smoke

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/slipway-deploy/slipway/internal/exitcode"
	"github.com/slipway-deploy/slipway/internal/oneline"
	"github.com/slipway-deploy/slipway/internal/smokespec"
)

// Config is a smoke-test run as the user asked for it (the step's flags),
// and where it prints and logs.
type Config struct {
	SpecFile       string
	BaseURL        string
	EnvName        string // exposed to the spec as ${ENV}
	Tags           []string
	SkipTags       []string
	BasicAuthFile  string
	CAFile         string
	Command        string
	JUnitInput     string
	Concurrency    int
	Deadline       time.Duration
	RequestTimeout time.Duration
	// JUnitOutput and JSONOutput are the report files to write ("": none).
	JUnitOutput, JSONOutput string
	// DryRun lists what would run on Stdout and requests nothing.
	DryRun bool
	// Getenv resolves the spec's ${VAR}s besides ENV; nil is os.LookupEnv.
	Getenv smokespec.Lookup
	// SecretVars are ${VAR}s whose values are masked in output, besides
	// those whose names look secret (see SecretVar).
	SecretVars []string
	// Secret is called with every credential found, to mask it in output;
	// Mask masks them in a text. Either may be nil.
	Secret func(...string)
	Mask   func(string) string
	// Stdout gets the check lines, the summary and the suite's output,
	// Stderr the suite's errors; nil discards.
	Stdout, Stderr io.Writer
	Log            *slog.Logger
}

// Plan is a validated run: the checks selected from the spec, the HTTP
// client set-up and the suite command.
type Plan struct {
	Checks  []smokespec.Check
	Options CheckOptions
	Command *Command
}

// sensitiveHeader names request headers whose values are masked in output.
var sensitiveHeader = regexp.MustCompile(`(?i)authorization|cookie|token|secret|key|password|session`)

// secretVarName matches ${VAR} names whose values are masked in output.
var secretVarName = regexp.MustCompile(`(?i)key|token|secret|password`)

// SecretVar reports whether the value of ${name} is masked in output: its
// name holds KEY, TOKEN, SECRET or PASSWORD (any case), or it is listed.
func SecretVar(name string, listed []string) bool {
	for _, l := range listed {
		if strings.TrimSpace(l) == name {
			return true
		}
	}
	return secretVarName.MatchString(name)
}

// Prepare validates the settings, reads the spec, the credentials and the CA
// file, and selects the checks. Every error is an input error (exit 2):
// nothing has been requested yet.
func Prepare(s Config) (*Plan, error) {
	if s.Secret == nil {
		s.Secret = func(...string) {}
	}
	if s.SpecFile == "" && s.Command == "" {
		return nil, exitcode.Invalidf("nothing to run: give --spec (HTTP checks) and/or --command (an external suite)")
	}
	if s.Command != "" && s.JUnitInput == "" {
		return nil, exitcode.Invalidf("--command needs --junit-input: the JUnit report the command writes")
	}
	if s.SpecFile == "" && len(s.Tags)+len(s.SkipTags) > 0 {
		return nil, exitcode.Invalidf("--tags and --skip-tags select the --spec's checks; without --spec, filter in the --command itself (e.g. --grep)")
	}
	if s.Command == "" && s.JUnitInput != "" {
		return nil, exitcode.Invalidf("--junit-input is read after --command runs; give --command too")
	}
	cfg := CheckOptions{Concurrency: s.Concurrency, Deadline: s.Deadline, RequestTimeout: s.RequestTimeout, Log: s.Log}
	if cfg.Concurrency < 1 {
		return nil, exitcode.Invalidf("--concurrency must be at least 1, got %d", cfg.Concurrency)
	}
	if cfg.Deadline <= 0 || cfg.RequestTimeout <= 0 {
		return nil, exitcode.Invalidf("--deadline and --request-timeout must be positive durations")
	}
	if s.BasicAuthFile != "" && s.BaseURL == "" {
		return nil, exitcode.Invalidf("--basic-auth-file needs --base-url: the credentials are sent to that URL's scheme, host and port only")
	}
	if s.BaseURL != "" {
		u, err := url.Parse(s.BaseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, exitcode.Invalidf("--base-url %q: want an absolute http:// or https:// URL", s.BaseURL)
		}
		if p, ok := u.User.Password(); ok {
			s.Secret(p)
		}
	}
	if s.BasicAuthFile != "" {
		raw, err := os.ReadFile(s.BasicAuthFile)
		if err != nil {
			return nil, exitcode.Invalidf("--basic-auth-file: %w", err)
		}
		auth, err := ParseBasicAuth(string(raw))
		if err != nil {
			return nil, exitcode.Invalidf("--basic-auth-file %s: %w", s.BasicAuthFile, err)
		}
		s.Secret(auth.Password, base64.StdEncoding.EncodeToString([]byte(auth.User+":"+auth.Password)))
		auth.BaseURL = s.BaseURL
		cfg.BasicAuth = auth
	}
	tlsConf, err := TLSConfig(s.CAFile)
	if err != nil {
		return nil, exitcode.Invalidf("--ca-file: %w", err)
	}
	cfg.Transport = NewTransport(tlsConf, cfg.Concurrency)
	plan := &Plan{Options: cfg}
	if s.SpecFile != "" {
		getenv := s.Getenv
		if getenv == nil {
			getenv = os.LookupEnv
		}
		lookup := func(name string) (string, bool) {
			v, ok := getenv(name)
			if name == "ENV" && s.EnvName != "" {
				v, ok = s.EnvName, true
			}
			if ok && SecretVar(name, s.SecretVars) {
				s.Secret(v) // before the value reaches a check line, a log or a report
			}
			return v, ok
		}
		spec, err := smokespec.Load(s.SpecFile, smokespec.Options{BaseURL: s.BaseURL, Lookup: lookup})
		if err != nil {
			return nil, exitcode.AsInvalid(err)
		}
		plan.Checks = smokespec.Select(spec.Checks, s.Tags, s.SkipTags)
		if len(plan.Checks) == 0 {
			return nil, exitcode.Invalidf("%s: no check is selected by --tags %s --skip-tags %s (of %d checks)",
				s.SpecFile, oneline.Or(strings.Join(s.Tags, ","), "(none)"), oneline.Or(strings.Join(s.SkipTags, ","), "(none)"), len(spec.Checks))
		}
		for _, c := range plan.Checks {
			for _, h := range c.Headers {
				if sensitiveHeader.MatchString(h.Name) {
					s.Secret(h.Value, strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(h.Value, "Bearer "), "Basic ")))
				}
			}
			if u, err := url.Parse(c.URL); err == nil {
				if p, ok := u.User.Password(); ok {
					s.Secret(p)
				}
			}
		}
	}
	if s.Command != "" {
		plan.Command = &Command{Command: s.Command, JUnitInput: s.JUnitInput}
	}
	return plan, nil
}

// Run runs the checks, then the suite command (its output streamed to
// stdout and stderr), and returns what they found.
func (p *Plan) Run(ctx context.Context, stdout, stderr io.Writer) Result {
	start := time.Now()
	o := Result{ran: true}
	if len(p.Checks) > 0 {
		o.Checks = RunChecks(ctx, p.Checks, p.Options)
	}
	if p.Command != nil {
		c := *p.Command
		c.Stdout, c.Stderr = stdout, stderr
		o.SuiteRan = true
		o.Suite, o.SuiteErr = RunCommand(ctx, c)
	}
	o.Elapsed = time.Since(start)
	return o
}

// Describe prints what the plan would run, for --dry-run.
func (p *Plan) Describe(w io.Writer) error {
	var b strings.Builder
	for _, c := range p.Checks {
		fmt.Fprintf(&b, "check  %s  %s %s", c.Name, c.Method, c.URL)
		if len(c.Tags) > 0 {
			fmt.Fprintf(&b, "  tags: @%s", strings.Join(c.Tags, " @"))
		}
		b.WriteString("\n")
	}
	if p.Command != nil {
		fmt.Fprintf(&b, "suite  sh -c %q, then read %s\n", p.Command.Command, p.Command.JUnitInput)
	}
	fmt.Fprintf(&b, "dry run: %d checks (concurrency %d, deadline %s), nothing requested\n", len(p.Checks), p.Options.Concurrency, p.Options.Deadline)
	_, err := io.WriteString(w, b.String())
	return err
}
