package images

import (
	"bytes"
	"testing"
	"time"
)

// FuzzReadISO9660: whatever the bytes, the reader returns or errs; it
// never panics or loops.
func FuzzReadISO9660(f *testing.F) {
	iso, _ := ConfigDrive{MetaData: map[string]any{"uuid": "u"}, UserData: []byte("x")}.Build(time.Unix(0, 0))
	f.Add(iso)
	f.Add(iso[:isoFirstSector*isoSector+isoSector])
	f.Fuzz(func(t *testing.T, b []byte) {
		ReadISO9660(bytes.NewReader(b), 1<<20)
	})
}
