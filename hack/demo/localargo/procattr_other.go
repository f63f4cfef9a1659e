//go:build !linux

package localargo

import "syscall"

// procAttr puts a container in a process group of its own (stopped as a
// group).
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
