package node_test

import (
	"io"
	"net"
	"net/url"
	"sync"
	"testing"

	"github.com/parleyhq/parley/cmd/internal/node"
	"github.com/parleyhq/parley/sdk/client"
)

// signalProxy relays one client's signaling to the node, so a test can take
// that client's network down (connections cut, new ones going nowhere)
// without touching its media, then bring it back.
type signalProxy interface {
	setDown(down bool)
	close()
}

// newSignalProxy starts a proxy for signaling over tr and returns the URL
// the client dials instead of the node's.
func newSignalProxy(t *testing.T, n *node.Node, tr client.Transport) (signalProxy, string) {
	t.Helper()
	if tr == client.TransportWebTransport {
		p := newUDPDropProxy(t, urlFor(t, n, tr))
		return p, p.url
	}
	p := newDropProxy(t, n.SignalURL())
	return p, p.url
}

// dropProxy relays TCP to the node's HTTP port, so a test can cut a
// client's signaling connection without touching its media.
type dropProxy struct {
	ln     net.Listener
	target string
	url    string
	wg     sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]bool
	down  bool // network down: connections are cut as they come
}

func newDropProxy(t *testing.T, signalURL string) *dropProxy {
	t.Helper()
	u, err := url.Parse(signalURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	u.Host = ln.Addr().String()
	p.url = u.String()
	p.wg.Go(p.accept)
	return p
}

func (p *dropProxy) accept() {
	for {
		in, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		p.mu.Unlock()
		if down {
			in.Close()
			continue
		}
		out, err := net.Dial("tcp", p.target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns[in], p.conns[out] = true, true
		p.mu.Unlock()
		p.wg.Go(func() { p.pipe(in, out) })
		p.wg.Go(func() { p.pipe(out, in) })
	}
}

func (p *dropProxy) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// setDown takes the network down (relayed connections cut, new ones
// refused) or brings it back.
func (p *dropProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for c := range p.conns {
			c.Close()
		}
	}
}

func (p *dropProxy) close() {
	p.ln.Close()
	p.setDown(true)
	p.wg.Wait()
}

// udpDropProxy relays UDP datagrams to the node's WebTransport port, with
// one upstream socket per client address. Down, it drops every datagram and
// forgets its upstream sockets: the client's QUIC connection goes silent,
// as on a dead network, and notices by its idle timeout.
type udpDropProxy struct {
	pc     net.PacketConn
	target *net.UDPAddr
	url    string
	wg     sync.WaitGroup

	mu   sync.Mutex
	ups  map[string]*net.UDPConn // by client address
	down bool
}

func newUDPDropProxy(t *testing.T, wtURL string) *udpDropProxy {
	t.Helper()
	u, err := url.Parse(wtURL)
	if err != nil {
		t.Fatal(err)
	}
	target, err := net.ResolveUDPAddr("udp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &udpDropProxy{pc: pc, target: target, ups: map[string]*net.UDPConn{}}
	u.Host = pc.LocalAddr().String()
	p.url = u.String()
	p.wg.Go(p.relayIn)
	return p
}

// relayIn forwards datagrams from clients to the node.
func (p *udpDropProxy) relayIn() {
	buf := make([]byte, 64<<10)
	for {
		n, from, err := p.pc.ReadFrom(buf)
		if err != nil {
			return
		}
		up := p.upstream(from)
		if up != nil {
			_, _ = up.Write(buf[:n])
		}
	}
}

// upstream returns the socket relaying for client from, opening it on the
// client's first datagram; nil while the network is down.
func (p *udpDropProxy) upstream(from net.Addr) *net.UDPConn {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down {
		return nil
	}
	if up := p.ups[from.String()]; up != nil {
		return up
	}
	up, err := net.DialUDP("udp", nil, p.target)
	if err != nil {
		return nil
	}
	p.ups[from.String()] = up
	p.wg.Go(func() { p.relayOut(up, from) })
	return up
}

// relayOut forwards the node's datagrams on up back to client to.
func (p *udpDropProxy) relayOut(up *net.UDPConn, to net.Addr) {
	buf := make([]byte, 64<<10)
	for {
		n, err := up.Read(buf)
		if err != nil {
			return
		}
		_, _ = p.pc.WriteTo(buf[:n], to)
	}
}

func (p *udpDropProxy) setDown(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	if down {
		for from, up := range p.ups {
			up.Close()
			delete(p.ups, from)
		}
	}
}

func (p *udpDropProxy) close() {
	p.pc.Close()
	p.setDown(true)
	p.wg.Wait()
}
