package sim

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/pin/tftp/v3"

	"github.com/stratacloud/strata/lab/netlab"
)

// errTooLarge is a fetch that went past its bound.
var errTooLarge = errors.New("larger than this firmware takes")

// fetchers fetch over HTTP and TFTP from inside the machine's namespace,
// into its boot directory.
type fetchers struct {
	netns  string
	dir    string
	client *http.Client
}

func (f *fetchers) http() *http.Client {
	if f.client == nil {
		f.client = &http.Client{Transport: &http.Transport{
			// Every connection is dialled from inside the namespace (the
			// transport dials on goroutines of its own, which are not).
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return netlab.Dial(ctx, f.netns, network, addr)
			},
			DisableCompression:    true,
			ResponseHeaderTimeout: time.Minute,
		}}
	}
	return f.client
}

func (f *fetchers) close() {
	if f.client != nil {
		f.client.CloseIdleConnections()
	}
}

// fetch writes what u names to w, at most limit bytes, within timeout
// (defaultGet if 0), and returns how many bytes it wrote.
func (f *fetchers) fetch(ctx context.Context, u *url.URL, w io.Writer, limit int64, timeout time.Duration) (int64, error) {
	if timeout <= 0 {
		timeout = defaultGet
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch u.Scheme {
	case "http":
		return f.fetchHTTP(ctx, u, w, limit)
	case "tftp":
		host := u.Host
		if u.Port() == "" {
			host = net.JoinHostPort(u.Hostname(), "69")
		}
		ap, err := netip.ParseAddrPort(host)
		if err != nil {
			return 0, fmt.Errorf("TFTP server %q: want an IP address", u.Host)
		}
		return tftpGet(ctx, f.netns, ap, strings.TrimPrefix(u.Path, "/"), w, limit)
	}
	return 0, fmt.Errorf("%s: the %q protocol is not supported by this firmware", u.Redacted(), u.Scheme)
}

func (f *fetchers) fetchHTTP(ctx context.Context, u *url.URL, w io.Writer, limit int64) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "iPXE/1.0.0+ (strata lab sim)")
	resp, err := f.http().Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("HTTP %s", resp.Status)
	}
	if resp.ContentLength > limit {
		return 0, errTooLarge
	}
	n, err := io.Copy(w, io.LimitReader(resp.Body, limit+1))
	if err == nil && n > limit {
		err = errTooLarge
	}
	return n, err
}

// cappedWriter stops a transfer when it passes its bound or its context
// ends (the TFTP client takes no context).
type cappedWriter struct {
	ctx   context.Context
	w     io.Writer
	n     int64
	limit int64
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.n+int64(len(p)) > c.limit {
		return 0, errTooLarge
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// tftpGet reads file from the TFTP server at server, from inside netns.
func tftpGet(ctx context.Context, netns string, server netip.AddrPort, file string, w io.Writer, limit int64) (int64, error) {
	cw := &cappedWriter{ctx: ctx, w: w, limit: limit}
	err := netlab.Do(netns, func() error {
		c, err := tftp.NewClient(server.String())
		if err != nil {
			return err
		}
		c.SetTimeout(2 * time.Second)
		c.SetRetries(5)
		c.SetBlockSize(1432) // iPXE's and OVMF's, on a 1500-byte MTU
		// Receive opens its socket on this thread, in the namespace.
		wt, err := c.Receive(file, "octet")
		if err != nil {
			return err
		}
		_, err = wt.WriteTo(cw)
		return err
	})
	if errors.Is(err, errTooLarge) || ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return cw.n, err
}

// fetchTFTP reads a whole file over TFTP.
func fetchTFTP(ctx context.Context, netns string, server netip.AddrPort, file string, limit int64) ([]byte, error) {
	var b bytes.Buffer
	if _, err := tftpGet(ctx, netns, server, file, &b, limit); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// get fetches u into w, showing the fetch on the console as iPXE does
// ("URL... ok").
func (ip *interp) get(ctx context.Context, u *url.URL, w io.Writer, limit int64, timeout time.Duration) (int64, error) {
	ip.fw.con.Printf("%s...", u.Redacted())
	n, err := ip.fetchers.fetch(ctx, u, w, limit, timeout)
	if err != nil {
		ip.fw.con.Printf(" %v\n", err)
		return n, fmt.Errorf("%s: %w", u.Redacted(), err)
	}
	ip.fw.con.Printf(" ok\n")
	return n, nil
}

// getFile fetches u into the file path.
func (ip *interp) getFile(ctx context.Context, u *url.URL, path string, limit int64, timeout time.Duration) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	n, err := ip.get(ctx, u, f, limit, timeout)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return n, err
}

// readHead reads at most n bytes from the start of a file.
func readHead(path string, n int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, n))
}
