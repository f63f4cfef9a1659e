package chartsrepo

// App, Env and Tag are names checked once, where they enter (a flag, a
// request), and trusted from then on: a value of these types can only be
// made by its Parse function, so the packages that take one (bumptag,
// promotion, the promoter) never check it again.

// name is a checked name: it prints, logs and encodes as itself.
type name struct{ s string }

func (n name) String() string { return n.s }

// MarshalText makes a name log and encode as itself.
func (n name) MarshalText() ([]byte, error) { return []byte(n.s), nil }

// IsZero reports whether the name is none (the zero value).
func (n name) IsZero() bool { return n.s == "" }

// App is a valid app name.
type App struct{ name }

// ParseApp checks app (ValidateApp) and returns it as an App.
func ParseApp(app string) (App, error) {
	if err := ValidateApp(app); err != nil {
		return App{}, err
	}
	return App{name{app}}, nil
}

// Env is an environment of a Layout's chain; the zero Env is none.
type Env struct{ name }

// ParseEnv checks that env is in the chain (ValidateEnv) and returns it as an Env.
func (l *Layout) ParseEnv(env string) (Env, error) {
	if err := l.ValidateEnv(env); err != nil {
		return Env{}, err
	}
	return Env{name{env}}, nil
}

// Tag is a valid image tag; the zero Tag is none.
type Tag struct{ name }

// ParseTag checks tag (ValidateTag) and returns it as a Tag.
func ParseTag(tag string) (Tag, error) {
	if err := ValidateTag(tag); err != nil {
		return Tag{}, err
	}
	return Tag{name{tag}}, nil
}
