package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/lablup/bainode/builder/inventory"
	"github.com/lablup/bainode/builder/inventory/dqlite"
)

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "rewrite a stopped member's raft configuration after a majority of voters is lost",
		Description: `When more than half of the voters are gone for good, no leader can be
elected and membership cannot change through the cluster. Stop the
surviving member with the most recent data (back up its --data first) and
run recover on its data directory. Without --members it becomes the only
member, a one-member cluster; start it as before and add members with
--join. recover refuses to run while a bainoded uses the directory.

--members keeps other survivors too, as ID=HOST:PORT (the ID is in their
DATA/info.yaml). Before starting them, copy cluster.yaml, the snapshot-*
files and the raft segment files from the recovered directory over theirs,
after deleting their own snapshot-*, segment, open-* and metadata1/2 files.
Keep each member's own info.yaml.

Anything acknowledged only by the lost members is gone.

Example:
  bainoded recover --data /var/lib/bainoded`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Required: true, Usage: "the stopped member's data `DIR`"},
			&cli.StringSliceFlag{Name: "members", Usage: "other `ID=HOST:PORT` members to keep as voters (repeat or comma-separate)"},
		},
		Action: recoverMember,
	}
}

func recoverMember(c *cli.Context) error {
	if c.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", c.Args().First())
	}
	var keep []inventory.Member
	for _, v := range c.StringSlice("members") {
		for _, p := range strings.Split(v, ",") {
			if p = strings.TrimSpace(p); p == "" {
				continue
			}
			idText, addr, ok := strings.Cut(p, "=")
			id, err := strconv.ParseUint(idText, 0, 64)
			if !ok || err != nil || id == 0 || addr == "" {
				return fmt.Errorf("--members %q: want ID=HOST:PORT with the ID from that member's info.yaml", p)
			}
			keep = append(keep, inventory.Member{ID: id, Address: addr})
		}
	}
	conf, err := dqlite.Recover(c.String("data"), keep)
	if err != nil {
		return err
	}
	w := c.App.Writer
	fmt.Fprintf(w, "rewrote the raft configuration in %s; its members are now:\n", c.String("data"))
	for _, m := range conf {
		fmt.Fprintf(w, "  %d  %s  %s\n", m.ID, m.Address, m.Role)
	}
	fmt.Fprintln(w, "start this member as before; copy its raft files to any other member listed first (see --help)")
	return nil
}
