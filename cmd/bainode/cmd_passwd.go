package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/go-crypt/crypt/algorithm/shacrypt"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"
)

func init() {
	register(&cli.Command{
		Name:  "passwd",
		Usage: "read a password without echo and print its SHA-512 crypt hash for operator.password_hash",
		Description: `Prompts twice on the terminal (or reads one line from standard input when it
is not a terminal) and prints a crypt(3) SHA-512 hash with rounds=5000, the
same form as 'openssl passwd -6' and mkpasswd. The password itself is never
printed or stored.

Example:
  bainode passwd        # then paste the hash into site.yaml`,
		Action: func(c *cli.Context) error {
			pw, err := readPassword()
			if err != nil {
				return err
			}
			h, err := hashPassword(pw)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, h)
			return nil
		},
	})
}

func hashPassword(pw string) (string, error) {
	if pw == "" {
		return "", usagef("empty password")
	}
	// rounds=5000 explicitly: the library's default (500000) is slow to
	// check on every sudo, and 5000 is what openssl and mkpasswd use.
	h, err := shacrypt.New(shacrypt.WithSHA512(), shacrypt.WithIterations(5000))
	if err != nil {
		return "", err
	}
	d, err := h.Hash(pw)
	if err != nil {
		return "", err
	}
	return d.Encode(), nil
}

func readPassword() (string, error) {
	fd := int(os.Stdin.Fd())
	if !term.IsTerminal(fd) {
		line, err := bufio.NewReader(os.Stdin).ReadString('\n')
		if err != nil && line == "" {
			return "", fmt.Errorf("reading the password from standard input: %w", err)
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	fmt.Fprint(os.Stderr, "Password: ")
	a, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(os.Stderr, "Again: ")
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", usagef("the passwords differ")
	}
	return string(a), nil
}
