package localargo

import "syscall"

// procAttr puts a container in a process group of its own (stopped as a
// group) and makes the kernel kill it if this program dies first.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
