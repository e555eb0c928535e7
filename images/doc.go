// Package images builds what the undercloud boots machines into: the
// deploy ramdisk (a Debian kernel's modules and the strata-agent as /init,
// in a compressed newc cpio) and, later, node disk images and service
// images.
//
// Builds are reproducible: the same kernel, agent and module list give the
// same bytes, so a ramdisk's sha256 names it.
package images
