package plan

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// Durations read as a person says them; the plan's goldens
// (internal/promoterserver TestPlanGolden) show them in place.
func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		42 * time.Second:                "42s",
		12 * time.Minute:                "12m",
		time.Hour:                       "1h",
		90 * time.Minute:                "1h30m",
		24 * time.Hour:                  "1d",
		11*24*time.Hour + 5*time.Hour:   "11d5h",
		1107*24*time.Hour + time.Minute: "1107d",
	} {
		assert.Equal(t, want, Duration(d).String(), d.String())
	}
	b, err := Duration(7 * 24 * time.Hour).MarshalText()
	assert.NoError(t, err)
	assert.Equal(t, "7d", string(b))
}

func TestWhen(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	assert.NoError(t, err)
	wed := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	assert.Equal(t, "Fri 09:00", when(time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), london, wed))
	assert.Equal(t, "Tue 5 Jan 00:00", when(time.Date(2027, 1, 5, 0, 0, 0, 0, time.UTC), london, wed), "further out: with the date")
	assert.Equal(t, "1 app", count(1, "app"))
	assert.Equal(t, "3 other steps have", count(3, "other step has", "other steps have"))
}
