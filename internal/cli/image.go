package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/stratacloud/strata/images"
)

func newImageCommand(g *globalOptions) *cobra.Command {
	cmd := groupCommand("image", "Build the images the undercloud boots machines into",
		`Images are what the undercloud's HTTP boot server hands to machines: the
deploy kernel and ramdisk, which every node boots to be inspected,
cleaned and deployed.`)
	build := groupCommand("build", "Build an image", "Build an image from its sources on this machine.")
	build.AddCommand(newImageBuildRamdiskCommand(g), newImageBuildTestImageCommand(g))
	cmd.AddCommand(build)
	return cmd
}

type imageBuildRamdiskOptions struct {
	g           *globalOptions
	output      string
	agent       string
	kernelCache string
}

func newImageBuildRamdiskCommand(g *globalOptions) *cobra.Command {
	o := &imageBuildRamdiskOptions{g: g}
	cmd := &cobra.Command{
		Use:   "ramdisk",
		Short: "Build the deploy kernel and ramdisk",
		Long: `Build the deploy ramdisk: a gzip-compressed cpio with strata-agent as its
/init and the kernel modules the agent needs (virtio, e1000/e1000e, igb,
ixgbe, nvme, ahci, sd/sr, vfat, isofs, with their dependencies) from the
Debian kernel that "make deps" unpacks into the kernel cache. Writes
deploy.kernel and deploy.initramfs into the output directory (replacing
them atomically) and prints their sizes and SHA-256 sums. The same
kernel and agent give the same bytes.

Point the undercloud at them with provisioning.images_dir (the output
directory), deploy_kernel: deploy.kernel and deploy_ramdisk:
deploy.initramfs.`,
		Example: `  strata image build ramdisk --output /var/lib/strata/undercloud/images
  strata image build ramdisk --agent ./bin/strata-agent --output /tmp/images -f json`,
		Args: exactArgs(0),
	}
	f := cmd.Flags()
	f.StringVar(&o.output, "output", "", "directory to write deploy.kernel and deploy.initramfs into (required)")
	f.StringVar(&o.agent, "agent", "", `strata-agent binary, static (default: "strata-agent" beside strata)`)
	f.StringVar(&o.kernelCache, "kernel-cache", images.DefaultKernelCache, "where make deps unpacked the Debian kernel")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *imageBuildRamdiskOptions) Complete(*cobra.Command, []string) error {
	if o.agent == "" {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.agent = filepath.Join(filepath.Dir(exe), "strata-agent")
	}
	return nil
}

func (o *imageBuildRamdiskOptions) Validate() error {
	if o.output == "" {
		return &usageError{msg: "--output: required"}
	}
	st, err := os.Stat(o.agent)
	if err != nil {
		return &usageError{msg: fmt.Sprintf("--agent: %v (build it with make build)", err)}
	}
	if st.IsDir() || st.Mode()&0o111 == 0 {
		return &usageError{msg: fmt.Sprintf("--agent: %s is not an executable file", o.agent)}
	}
	return nil
}

func (o *imageBuildRamdiskOptions) Run(context.Context) error {
	k, err := images.FindKernel(o.kernelCache)
	if err != nil {
		return err
	}
	kernel, ramdisk, err := images.InstallDeploy(o.output, k, o.agent)
	if err != nil {
		return err
	}
	rows := []record{}
	for _, a := range []images.Artifact{kernel, ramdisk} {
		rows = append(rows, record{"name": a.Name, "path": filepath.Join(o.output, a.Name), "size": a.Size, "sha256": a.SHA256, "kernel_release": k.Release})
	}
	return o.g.printer().listAll([]column{
		{"name", "Name"}, {"size", "Size"}, {"sha256", "SHA256"}, {"kernel_release", "Kernel"}, {"path", "Path"},
	}, rows)
}

type imageBuildTestOptions struct {
	g           *globalOptions
	gpt         bool
	output      string
	busybox     string
	kernelCache string
}

func newImageBuildTestImageCommand(g *globalOptions) *cobra.Command {
	o := &imageBuildTestOptions{g: g}
	cmd := &cobra.Command{
		Use:   "test-image",
		Short: "Build a small whole-disk image to deploy onto test nodes",
		Long: `Build test-image.raw: a 64 MiB raw disk image with one FAT32 partition
that boots with BIOS (syslinux's MBR code and ldlinux.sys) and with UEFI
(/EFI/BOOT/BOOTX64.EFI) into the Debian kernel and a busybox initramfs,
which prints "` + images.TestImageMarker + `" on the serial console. Deploy
it with instance_info image_source (its URL on the undercloud's HTTP boot
server: /images/test-image.raw) and image_os_hash_value (the SHA-256 this
command prints). With --gpt, test-image-gpt.raw: the same with a GUID
partition table (an EFI system partition marked legacy-BIOS-bootable,
syslinux's gptmbr), as whole-disk cloud images are. After its marker the
image looks for a config drive (label config-2), mounts it and prints its
meta_data.json. Needs mtools, syslinux and gdisk (make deps).`,
		Example: `  strata image build test-image --output /var/lib/strata/undercloud/images
  strata image build test-image --gpt --output /var/lib/strata/undercloud/images`,
		Args: exactArgs(0),
	}
	f := cmd.Flags()
	f.StringVar(&o.output, "output", "", "directory to write test-image.raw into (required)")
	f.BoolVar(&o.gpt, "gpt", false, "partition with GPT (test-image-gpt.raw) instead of an MBR")
	f.StringVar(&o.busybox, "busybox", "/bin/busybox", "a static busybox (Debian's busybox-static)")
	f.StringVar(&o.kernelCache, "kernel-cache", images.DefaultKernelCache, "where make deps unpacked the Debian kernel")
	cmd.RunE = runE(g, o)
	return cmd
}

func (o *imageBuildTestOptions) Complete(*cobra.Command, []string) error { return nil }

func (o *imageBuildTestOptions) Validate() error {
	if o.output == "" {
		return &usageError{msg: "--output: required"}
	}
	return nil
}

func (o *imageBuildTestOptions) Run(context.Context) error {
	k, err := images.FindKernel(o.kernelCache)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.output, 0o755); err != nil {
		return err
	}
	a, err := images.TestImage{Kernel: k, Busybox: o.busybox, GPT: o.gpt}.Install(o.output)
	if err != nil {
		return err
	}
	return o.g.printer().listAll([]column{{"name", "Name"}, {"size", "Size"}, {"sha256", "SHA256"}, {"path", "Path"}},
		[]record{{"name": a.Name, "size": a.Size, "sha256": a.SHA256, "path": filepath.Join(o.output, a.Name)}})
}
