//go:build !linux

package serverproc

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
