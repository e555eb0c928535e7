package httpboot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
)

// FS serves artifacts from fsys. Each file must be seekable (as os.File and
// embed.FS files are) and regular. Its ETag is made of its size and
// modification time, as nginx makes it; a file replaced by another (written
// aside, then renamed) gets a new one.
//
// For a directory, pass an os.Root's FS, which keeps symbolic links from
// leading out of the directory:
//
//	root, err := os.OpenRoot(dir)
//	...
//	httpboot.FS(root.FS())
//
// Errors other than a missing file, a link out of the root among them,
// are reported as fs.ErrPermission.
func FS(fsys fs.FS) Artifacts {
	return fsArtifacts{fsys}
}

type fsArtifacts struct{ fsys fs.FS }

func (a fsArtifacts) Open(_ context.Context, name string) (*Artifact, error) {
	f, err := a.fsys.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err != nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: %v", fs.ErrPermission, unwrapPath(err))}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "stat", Path: name, Err: fmt.Errorf("%w: %v", fs.ErrPermission, unwrapPath(err))}
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: fmt.Errorf("%w: not a regular file", fs.ErrPermission)}
	}
	rs, ok := f.(io.ReadSeekCloser)
	if !ok {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: name, Err: errors.New("the file system's files can not seek")}
	}
	a2 := &Artifact{Content: rs, ModTime: fi.ModTime()}
	if !fi.ModTime().IsZero() {
		a2.ETag = fmt.Sprintf(`"%x-%x"`, fi.ModTime().UnixNano(), fi.Size())
	}
	return a2, nil
}

func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
