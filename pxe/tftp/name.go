package tftp

import (
	"errors"
	"io/fs"
	"strings"
)

// maxNameLen bounds a requested name; a request packet is at most 512
// bytes anyway.
const maxNameLen = 255

// Reasons a name is refused.
var (
	errEmptyName    = errors.New("empty file name")
	errLongName     = errors.New("file name too long")
	errControlChars = errors.New("file name contains control characters")
	errAbsolute     = errors.New("absolute file names are not served")
	errDotDot       = errors.New("file names with .. are not served")
)

// cleanName turns the file name of a read request into a path relative to
// the server's root, slash-separated, without "." or empty elements, or
// refuses it. DOS-style backslashes, which some PXE clients send, count as
// slashes. Absolute names and names with a ".." element are refused
// outright rather than mapped into the root, so that a client asking for
// /etc/passwd or ../x learns it was refused, not that the file is missing.
//
// What cleanName returns is a valid io/fs path: it can not name anything
// above the root lexically. Symbolic links are the root's job (os.Root).
func cleanName(name string) (string, error) {
	if name == "" {
		return "", errEmptyName
	}
	if len(name) > maxNameLen {
		return "", errLongName
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < 0x20 || c == 0x7f {
			return "", errControlChars
		}
	}
	name = strings.ReplaceAll(name, `\`, "/")
	if strings.HasPrefix(name, "/") {
		return "", errAbsolute
	}
	var elems []string
	for e := range strings.SplitSeq(name, "/") {
		switch e {
		case "", ".":
			continue
		case "..":
			return "", errDotDot
		}
		elems = append(elems, e)
	}
	if len(elems) == 0 {
		return "", errEmptyName
	}
	p := strings.Join(elems, "/")
	if !fs.ValidPath(p) {
		// Unreachable given the loop above; kept as the last word.
		return "", errDotDot
	}
	return p, nil
}
