package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"syscall"

	"github.com/xdpconnect/xdpconnect/internal/lab"
)

func cmdLab(args []string) error {
	if len(args) == 0 {
		return usageError("lab needs a subcommand: up, down, status")
	}
	switch args[0] {
	case "up":
		return labUp(args[1:])
	case "down":
		return labDown(args[1:])
	case "status":
		return labStatus(args[1:])
	case "serve":
		return labServe(args[1:])
	case "-h", "--help", "help":
		fmt.Print("usage: xdpconnect lab up|down|status [flags] (each takes -h)\n" +
			"  up      create client and server namespaces, a veth pair (kernel defaults) and a Linux listener\n" +
			"  down    remove the lab --name (default lab); --all removes labs whose owner has ended\n" +
			"  status  list the labs on this machine\n")
		return nil
	}
	return usageError("unknown lab subcommand %q", args[0])
}

func labUp(args []string) error {
	fs := flag.NewFlagSet("lab up", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name (namespaces are xdc-NAME-cli, -srv, -rtr)")
	router := fs.Bool("router", false, "put a router namespace between client and server")
	queues := fs.Int("queues", 0, "RX/TX queues allocated on the client veth (0: the kernel's default, as 'ip link add')")
	ports := fs.String("ports", "8080", "listener ports, e.g. 8080,9000-9003")
	hold := fs.Bool("hold", false, "keep accepted connections open instead of closing with FIN")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	pl, err := parsePorts(*ports)
	if err != nil {
		return err
	}
	l, err := lab.Up(lab.Options{Name: *name, Router: *router, Queues: *queues})
	if err != nil {
		return err
	}
	self, _ := os.Executable()
	sargs := []string{"lab", "serve", "--name", *name, "--ports", *ports}
	if *hold {
		sargs = append(sargs, "--hold")
	}
	cmd := exec.Command(self, sargs...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		_ = l.Close()
		return fmt.Errorf("start listener: %w", err)
	}
	st := lab.Server{Name: *name, PID: cmd.Process.Pid, Ports: pl}
	// The listener process owns the lab from now on: while it lives, no
	// other invocation's `lab down --all` removes the lab.
	if err := l.SetOwner(st.PID); err != nil {
		_ = cmd.Process.Kill()
		_ = l.Close()
		return err
	}
	if err := st.Save(); err != nil {
		_ = cmd.Process.Kill()
		_ = l.Close()
		return err
	}
	_ = cmd.Process.Release()
	fmt.Print(l.String())
	fmt.Printf("  listener %s ports %s (pid %d)\n", l.ServerAddr, *ports, st.PID)
	fmt.Printf("\ntry:  ip netns exec %s xdpconnect run --dst %s:%d --count 10000\n", l.ClientNS, l.ServerAddr, pl[0])
	return nil
}

// labServe is the listener process `lab up` leaves running.
func labServe(args []string) error {
	fs := flag.NewFlagSet("lab serve", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name")
	ports := fs.String("ports", "8080", "ports")
	hold := fs.Bool("hold", false, "hold connections")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	pl, err := parsePorts(*ports)
	if err != nil {
		return err
	}
	return lab.Serve(*name, pl, *hold)
}

func labDown(args []string) error {
	fs := flag.NewFlagSet("lab down", flag.ContinueOnError)
	name := fs.String("name", "lab", "lab name")
	all := fs.Bool("all", false, "remove every lab whose owner has ended: leftovers of crashed runs, tests and demos (labs of live processes stay)")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	if *all {
		removed, err := lab.DownStale()
		for _, r := range removed {
			fmt.Printf("removed leftover namespace %s\n", r)
		}
		lab.ForgetGoneServers()
		return err
	}
	st, stErr := lab.ReadServer(*name)
	if pid, live := lab.Owned(*name); live && (stErr != nil || pid != st.PID) {
		return fmt.Errorf("lab %s is in use by process %d (a test, demo or run); it is removed when that process ends", *name, pid)
	}
	st.Name = *name
	st.Stop()
	l, err := lab.Open(*name)
	if err != nil {
		return fmt.Errorf("no lab named %s ('xdpconnect lab status' lists them)", *name)
	}
	if err := l.Close(); err != nil {
		return err
	}
	fmt.Printf("removed lab %s\n", *name)
	return nil
}

func labStatus(args []string) error {
	fs := flag.NewFlagSet("lab status", flag.ContinueOnError)
	name := fs.String("name", "", "show this lab only (default: every lab)")
	if err := parseFlags(fs, args, os.Stdout); err != nil {
		return err
	}
	names, err := lab.Names()
	if err != nil {
		return err
	}
	if *name != "" {
		if !slices.Contains(names, *name) {
			return fmt.Errorf("no lab named %s ('xdpconnect lab status' lists them)", *name)
		}
		names = []string{*name}
	}
	if len(names) == 0 {
		fmt.Println("no lab is up (xdpconnect lab up creates one)")
		return nil
	}
	for _, n := range names {
		l, err := lab.Open(n)
		if err != nil {
			fmt.Printf("lab %s: incomplete (%v); `xdpconnect lab down --all` removes it\n", n, err)
			continue
		}
		fmt.Print(l.String())
		st, err := lab.ReadServer(n)
		if err != nil {
			fmt.Println("  listener: none recorded")
			continue
		}
		fmt.Printf("  listener %s ports %v pid %d alive=%v accepted=%s\n", l.ServerAddr, st.Ports, st.PID, st.Alive(), st.Accepted())
	}
	return nil
}
