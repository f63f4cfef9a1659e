// Package exitcode carries a step binary's exit status inside an error, so
// that internal packages can say "invalid input" or "retry may help" and
// stepcli turns that into the process exit code Argo's retry policy reads
// (0 done, 1 a retry may help, 2 invalid input, 3 held by policy).
package exitcode

import (
	"errors"
	"fmt"
)

// The exit codes every step binary uses.
const (
	OK      = 0 // done, including "nothing to do"
	Failed  = 1 // failed; a retry may help (network, conflict budget spent)
	Invalid = 2 // invalid input or configuration; never retry
	Held    = 3 // held by policy where the caller asked to treat that as failure
)

// Error is an error with the exit code the process should end with.
type Error struct {
	Code int
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Invalidf returns an input or configuration error (exit 2).
func Invalidf(format string, args ...any) error {
	return &Error{Code: Invalid, Err: fmt.Errorf(format, args...)}
}

// Failedf returns a failure a retry may fix (exit 1).
func Failedf(format string, args ...any) error {
	return &Error{Code: Failed, Err: fmt.Errorf(format, args...)}
}

// Heldf returns a policy hold (exit 3).
func Heldf(format string, args ...any) error {
	return &Error{Code: Held, Err: fmt.Errorf(format, args...)}
}

// AsInvalid marks err as an input error, keeping it for errors.Is/As.
func AsInvalid(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Code: Invalid, Err: err}
}

// Code returns the exit code for err: 0 for nil, the code of the outermost
// *Error in the chain, and Failed for any other error.
func Code(err error) int {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Failed
}
