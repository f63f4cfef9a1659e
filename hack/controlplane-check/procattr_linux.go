package main

import "syscall"

// procAttr makes the kernel kill a child if this program dies without
// stopping it (e.g. SIGKILL), so no etcd or apiserver is left behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
