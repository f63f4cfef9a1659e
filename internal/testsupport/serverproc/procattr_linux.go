package serverproc

import "syscall"

// procAttr makes the kernel kill a child if this program dies without
// stopping it (e.g. SIGKILL), so no server is left behind.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
