package bake

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
)

// An offline bake runs with restrict=on, so a guest that reaches for the
// network gets nowhere; it might then fail late and obscurely, or succeed
// without what it wanted. So QEMU dumps the guest's NIC to a pcap file and
// the bake fails on any attempt seen there, naming it.

// NetAttempt is one destination the guest tried, with how often.
type NetAttempt struct {
	What  string // "DNS query for NAME", "TCP 192.0.2.1:80", "UDP ...", "ping ..."
	Count int
}

// NetworkError fails an offline bake whose guest tried the network.
type NetworkError struct{ Attempts []NetAttempt }

func (e *NetworkError) Error() string {
	var parts []string
	for _, a := range e.Attempts {
		parts = append(parts, fmt.Sprintf("%s (x%d)", a.What, a.Count))
	}
	return "the guest tried the network, which an offline bake (restrict=on) does not reach: " +
		strings.Join(parts, "; ") +
		"; carry what the bake needs on the payload (bainode payload), or bake with --online"
}

// slirpMAC reports the MACs QEMU's user networking answers from (52:55
// and a virtual host's IPv4 address, 52:56 for IPv6): not the guest's frames.
func slirpMAC(src []byte) bool {
	return src[0] == 0x52 && (src[1] == 0x55 || src[1] == 0x56)
}

// netAttempts reads a pcap file written by QEMU's filter-dump and returns
// the connections the guest tried: DNS queries, TCP SYNs, other unicast
// UDP and pings. DHCP, ARP, ICMPv6 (neighbour discovery) and multicast are
// what any booting guest sends and do not count.
func netAttempts(path string) ([]NetAttempt, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var gh [24]byte
	if _, err := io.ReadFull(f, gh[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil // QEMU never got to write the header
		}
		return nil, fmt.Errorf("%s: pcap header: %w", path, err)
	}
	var bo binary.ByteOrder
	switch binary.LittleEndian.Uint32(gh[:4]) {
	case 0xa1b2c3d4, 0xa1b23c4d:
		bo = binary.LittleEndian
	case 0xd4c3b2a1, 0x4d3cb2a1:
		bo = binary.BigEndian
	default:
		return nil, fmt.Errorf("%s: not a pcap file", path)
	}
	if lt := bo.Uint32(gh[20:24]); lt != 1 {
		return nil, fmt.Errorf("%s: link type %d, want Ethernet", path, lt)
	}
	seen := map[string]int{}
	var order []string
	var rh [16]byte
	for {
		if _, err := io.ReadFull(f, rh[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break // a record cut short by QEMU's end
			}
			return nil, err
		}
		n := bo.Uint32(rh[8:12])
		if n > 1<<20 {
			return nil, fmt.Errorf("%s: record of %d bytes", path, n)
		}
		frame := make([]byte, n)
		if _, err := io.ReadFull(f, frame); err != nil {
			break
		}
		if what := guestAttempt(frame); what != "" {
			if seen[what] == 0 {
				order = append(order, what)
			}
			seen[what]++
		}
	}
	out := make([]NetAttempt, len(order))
	for i, w := range order {
		out[i] = NetAttempt{What: w, Count: seen[w]}
	}
	return out, nil
}

// guestAttempt names what an Ethernet frame from the guest tried, or "".
func guestAttempt(fr []byte) string {
	if len(fr) < 14 || slirpMAC(fr[6:12]) {
		return ""
	}
	var proto byte
	var dst netip.Addr
	var l4 []byte
	switch binary.BigEndian.Uint16(fr[12:14]) {
	case 0x0800:
		ip := fr[14:]
		if len(ip) < 20 || ip[0]>>4 != 4 {
			return ""
		}
		ihl := int(ip[0]&0xf) * 4
		if len(ip) < ihl || binary.BigEndian.Uint16(ip[6:8])&0x1fff != 0 {
			return "" // a later fragment: its first one counted
		}
		proto, dst, l4 = ip[9], netip.AddrFrom4([4]byte(ip[16:20])), ip[ihl:]
	case 0x86dd:
		ip := fr[14:]
		if len(ip) < 40 {
			return ""
		}
		proto, dst, l4 = ip[6], netip.AddrFrom16([16]byte(ip[24:40])), ip[40:]
	default:
		return "" // ARP and the rest
	}
	if dst.IsMulticast() || dst == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return ""
	}
	switch proto {
	case 6: // TCP: a connection attempt is a SYN without ACK
		if len(l4) < 14 || l4[13]&0x12 != 0x02 {
			return ""
		}
		return "TCP " + netip.AddrPortFrom(dst, binary.BigEndian.Uint16(l4[2:4])).String()
	case 17:
		if len(l4) < 8 {
			return ""
		}
		port := binary.BigEndian.Uint16(l4[2:4])
		switch port {
		case 67, 547: // DHCP
			return ""
		case 53:
			if name := dnsName(l4[8:]); name != "" {
				return "DNS query for " + name
			}
		}
		return "UDP " + netip.AddrPortFrom(dst, port).String()
	case 1:
		if len(l4) > 0 && l4[0] == 8 {
			return "ping " + dst.String()
		}
	case 58:
		if len(l4) > 0 && l4[0] == 128 {
			return "ping " + dst.String()
		}
	}
	return ""
}

// dnsName reads the first question's name of a DNS message.
func dnsName(m []byte) string {
	if len(m) < 13 {
		return ""
	}
	var labels []string
	for i := 12; i < len(m); {
		l := int(m[i])
		if l == 0 {
			return strings.Join(labels, ".")
		}
		if l > 63 || i+1+l > len(m) {
			return ""
		}
		labels = append(labels, string(m[i+1:i+1+l]))
		i += 1 + l
	}
	return ""
}
