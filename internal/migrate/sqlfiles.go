package migrate

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/slipway-deploy/slipway/internal/exitcode"
)

// File is one NNNN_name.up.sql migration.
type File struct {
	Version uint64
	Name    string // the file name, e.g. 0002_add_users.up.sql
}

var fileName = regexp.MustCompile(`^([0-9]+)_([^/]+)\.(up|down)\.sql$`)

// ReadDir lists the up migrations of dir in version order. A .sql file
// that does not follow NNNN_name.up.sql / NNNN_name.down.sql, or two up files
// with one version, is an exit-2 error: golang-migrate would skip or refuse
// it, and a skipped migration is worse than a refused run.
func ReadDir(dir string) ([]File, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, exitcode.Invalidf("--sql-dir %s: %w", dir, err)
	}
	var files []File
	seen := map[uint64]string{}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".sql") {
			continue
		}
		m := fileName.FindStringSubmatch(name)
		if m == nil {
			return nil, exitcode.Invalidf("--sql-dir %s: %s is not named NNNN_name.up.sql or NNNN_name.down.sql", dir, name)
		}
		if m[3] != "up" {
			continue
		}
		v, err := strconv.ParseUint(m[1], 10, 64)
		if err != nil {
			return nil, exitcode.Invalidf("--sql-dir %s: %s: version %s is too large", dir, name, m[1])
		}
		if other, dup := seen[v]; dup {
			return nil, exitcode.Invalidf("--sql-dir %s: %s and %s have the same version %d", dir, other, name, v)
		}
		seen[v] = name
		files = append(files, File{Version: v, Name: name})
	}
	if len(files) == 0 {
		return nil, exitcode.Invalidf("--sql-dir %s has no NNNN_name.up.sql files", dir)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Version < files[j].Version })
	return files, nil
}

// ParseVersion reads a --since value: a version number, or a file name
// whose leading digits are the version.
func ParseVersion(s string) (uint64, error) {
	if m := fileName.FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("version %q is not a number", s)
	}
	return v, nil
}
