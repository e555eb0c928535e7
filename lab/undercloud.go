package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/stratacloud/strata/images"
	"github.com/stratacloud/strata/lab/netlab"
)

// undercloudProcess names the undercloud's process in the state file.
const undercloudProcess = "undercloud"

// undercloudAddr is the undercloud API's address inside the lab.
func undercloudAddr() string {
	n, _ := networkByName(NetCtlplane)
	return net.JoinHostPort(n.Undercloud.String(), strconv.Itoa(undercloudAPIPort))
}

// startUndercloud writes the undercloud's htpasswd and config, and starts
// `undercloud run` in the undercloud's namespace, listening on
// 192.168.24.1:6385 with http_basic, its log in undercloud.log.
func (d *daemon) startUndercloud() error {
	dir := filepath.Join(d.dir, "undercloud")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(d.cfg.Undercloud.Password), bcrypt.DefaultCost)
	if err != nil {
		return err
	}
	htpasswd := filepath.Join(d.dir, "htpasswd")
	if err := os.WriteFile(htpasswd, []byte(d.cfg.Undercloud.Username+":"+string(hash)+"\n"), 0o600); err != nil {
		return err
	}
	// The deploy ramdisk, built from the cached Debian kernel and the
	// agent, is what the undercloud boots nodes into to work on them.
	k, err := images.FindKernel(d.cfg.Undercloud.KernelCache)
	if err != nil {
		return err
	}
	kernel, ramdisk, err := images.InstallDeploy(filepath.Join(dir, "images"), k, d.cfg.Undercloud.Agent)
	if err != nil {
		return fmt.Errorf("deploy ramdisk: %w", err)
	}
	d.log.Info("deploy ramdisk built", "kernel", k.Release, "ramdisk_bytes", ramdisk.Size, "ramdisk_sha256", ramdisk.SHA256)
	ctl, _ := networkByName(NetCtlplane)
	// A small image to deploy, served beside the ramdisk.
	testImage, err := images.InstallTestImage(filepath.Join(dir, "images"), k, d.cfg.Undercloud.Busybox)
	if err != nil {
		return err
	}
	imageURL := "http://" + net.JoinHostPort(ctl.Undercloud.String(), strconv.Itoa(undercloudBootPort)) + "/images/" + testImage.Name
	if err := d.st.update(func(s *State) { s.TestImageURL, s.TestImageSHA256 = imageURL, testImage.SHA256 }); err != nil {
		return err
	}
	d.log.Info("test image built", "url", imageURL, "sha256", testImage.SHA256)
	conf := filepath.Join(d.dir, "undercloud.yaml")
	// The undercloud serves network boot on its ctlplane interface (the
	// process runs in its namespace, so no netns is named).
	body := fmt.Sprintf("conductor:\n  name: lab-%s\n  power_sync_interval: %s\nlog_format: text\n"+
		"provisioning:\n  interface: %s\n  address: %s\n  images_dir: %s\n  deploy_kernel: %s\n  deploy_ramdisk: %s\n"+
		// The VMs run under TCG on a host that may be busy: the
		// kernel's check of the timer through the IO-APIC can fail
		// there and panic the ramdisk's boot.
		"  kernel_args: [no_timer_check]\n",
		d.cfg.Name, time.Duration(d.cfg.Undercloud.PowerSyncInterval),
		NetCtlplane, netip.PrefixFrom(ctl.Undercloud, ctl.Subnet.Bits()),
		filepath.Join(dir, "images"), kernel.Name, ramdisk.Name)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(filepath.Join(d.dir, "undercloud.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(d.cfg.Undercloud.Binary, "run",
		"--data-dir", dir,
		"--listen", undercloudAddr(),
		"--auth", "http_basic",
		"--htpasswd", htpasswd,
		"--config", conf)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := netlab.Start(undercloudNS(d.prefix), cmd); err != nil {
		return err
	}
	d.undercloud, d.ucDone = cmd, make(chan struct{})
	d.st.add(processResource(undercloudProcess, cmd.Process.Pid))
	go func() {
		err := cmd.Wait()
		d.log.Info("undercloud exited", "pid", cmd.Process.Pid, "status", fmt.Sprint(err))
		close(d.ucDone)
	}()
	d.log.Info("undercloud started", "pid", cmd.Process.Pid, "listen", undercloudAddr())
	return nil
}

// undercloudClient is an HTTP client whose connections are made in the
// undercloud's namespace.
func (d *daemon) undercloudClient() *http.Client {
	ns := undercloudNS(d.prefix)
	return &http.Client{
		Timeout: 5 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return netlab.Dial(ctx, ns, network, addr)
			},
			DisableKeepAlives: true,
		},
	}
}

// waitUndercloud waits until the undercloud's /healthz answers.
func (d *daemon) waitUndercloud(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	c := d.undercloudClient()
	url := "http://" + undercloudAddr() + "/healthz"
	var last error
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := c.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s: %s", url, resp.Status)
		}
		last = err
		select {
		case <-d.ucDone:
			return fmt.Errorf("exited at start: see %s", filepath.Join(d.dir, "undercloud.log"))
		case <-ctx.Done():
			return fmt.Errorf("not ready: %v (see %s)", last, filepath.Join(d.dir, "undercloud.log"))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopUndercloud asks the undercloud to stop (SIGTERM), and kills it
// after a grace period.
func (d *daemon) stopUndercloud(ctx context.Context) {
	if d.undercloud == nil {
		return
	}
	d.undercloud.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case <-d.ucDone:
	case <-t.C:
		d.undercloud.Process.Kill()
		<-d.ucDone
	case <-ctx.Done():
		d.undercloud.Process.Kill()
		<-d.ucDone
	}
	d.st.remove(Resource{Kind: ResProcess, Name: undercloudProcess, PID: d.undercloud.Process.Pid})
}

// maxForwardConns bounds the connections the API forward carries at once.
const maxForwardConns = 64

// serveAPIForward listens on 127.0.0.1 (the configured port, or a free
// one) in the host's namespace, and carries each connection to the
// undercloud's API, dialled from inside the undercloud's namespace. This
// is how the host reaches the undercloud without any interface of the lab
// in the host's namespace: traffic stays on loopback and in the lab.
func (d *daemon) serveAPIForward(ctx context.Context) error {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(d.cfg.Undercloud.APIPort)))
	if err != nil {
		return err
	}
	ns, target := undercloudNS(d.prefix), undercloudAddr()
	if err := d.st.update(func(s *State) {
		s.APIURL = "http://" + ln.Addr().String()
		s.UndercloudURL = "http://" + target
	}); err != nil {
		ln.Close()
		return err
	}
	sem := make(chan struct{}, maxForwardConns)
	var wg sync.WaitGroup
	d.group.Go(func() error {
		<-ctx.Done()
		return ln.Close()
	})
	d.group.Go(func() error {
		defer wg.Wait()
		for {
			c, err := ln.Accept()
			if err != nil {
				if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
					return nil
				}
				return err
			}
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				c.Close()
				return nil
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				forward(ctx, c, func(ctx context.Context) (net.Conn, error) {
					return netlab.Dial(ctx, ns, "tcp", target)
				})
			}()
		}
	})
	return nil
}

// forward copies between c and a connection dialled to the target, both
// ways, until either side closes or ctx ends.
func forward(ctx context.Context, c net.Conn, dial func(context.Context) (net.Conn, error)) {
	defer c.Close()
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	up, err := dial(dctx)
	cancel()
	if err != nil {
		return
	}
	defer up.Close()
	stop := context.AfterFunc(ctx, func() { c.Close(); up.Close() })
	defer stop()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}
