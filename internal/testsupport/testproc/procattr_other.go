//go:build !linux

package testproc

import "syscall"

func procAttr() *syscall.SysProcAttr { return nil }
