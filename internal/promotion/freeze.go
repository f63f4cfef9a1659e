package promotion

import (
	"fmt"
	"strings"
	"time"
)

// Freeze is when promotions into one environment are closed: weekly windows
// and dated freezes, both read in one time zone.
type Freeze struct {
	Location *time.Location
	Weekly   []WeeklyWindow
	Dated    []DatedWindow
}

// WeeklyWindow closes from Start to End every week, in the freeze's time
// zone. End may fall on an earlier weekday than Start (Fri 17:00 to Mon
// 09:00 spans the weekend).
type WeeklyWindow struct {
	Start, End WeekTime
}

// WeekTime is a wall-clock time on a weekday.
type WeekTime struct {
	Day          time.Weekday
	Hour, Minute int
}

// DatedWindow closes whole days From..To, both included.
type DatedWindow struct {
	From, To Date
}

// Date is a calendar day.
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseWeekTime reads "Fri 17:00" (day names in English, three letters or whole).
func ParseWeekTime(s string) (WeekTime, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return WeekTime{}, fmt.Errorf("%q: want a weekday and a time, e.g. \"Fri 17:00\"", s)
	}
	day := -1
	for d := time.Sunday; d <= time.Saturday; d++ {
		name := d.String()
		if strings.EqualFold(f[0], name) || strings.EqualFold(f[0], name[:3]) {
			day = int(d)
		}
	}
	if day < 0 {
		return WeekTime{}, fmt.Errorf("%q: %q is not a weekday", s, f[0])
	}
	t, err := time.Parse("15:04", f[1])
	if err != nil {
		return WeekTime{}, fmt.Errorf("%q: %q is not a time HH:MM", s, f[1])
	}
	return WeekTime{Day: time.Weekday(day), Hour: t.Hour(), Minute: t.Minute()}, nil
}

// ParseDate reads "2026-12-20".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return Date{}, fmt.Errorf("%q is not a date YYYY-MM-DD", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day) }

func (d Date) at(loc *time.Location) time.Time {
	return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, loc)
}

// window is one closed interval [start, end).
type window struct {
	start, end time.Time
	what       string
}

// covering returns the window of f that contains now, if any.
func (f *Freeze) covering(now time.Time) (window, bool) {
	loc := f.Location
	if loc == nil {
		loc = time.UTC
	}
	local := now.In(loc)
	for _, d := range f.Dated {
		// time.Date normalises, so To's next midnight is right across DST.
		start := d.From.at(loc)
		end := time.Date(d.To.Year, d.To.Month, d.To.Day+1, 0, 0, 0, 0, loc)
		if !now.Before(start) && now.Before(end) {
			return window{start, end, fmt.Sprintf("freeze %s..%s", d.From, d.To)}, true
		}
	}
	for _, w := range f.Weekly {
		// The latest start at or before now is at most 7 days back.
		for back := 0; back <= 7; back++ {
			day := local.AddDate(0, 0, -back)
			if day.Weekday() != w.Start.Day {
				continue
			}
			start := time.Date(day.Year(), day.Month(), day.Day(), w.Start.Hour, w.Start.Minute, 0, 0, loc)
			if start.After(now) {
				continue
			}
			ahead := (int(w.End.Day) - int(w.Start.Day) + 7) % 7
			end := time.Date(day.Year(), day.Month(), day.Day()+ahead, w.End.Hour, w.End.Minute, 0, 0, loc)
			if !end.After(start) {
				end = time.Date(day.Year(), day.Month(), day.Day()+ahead+7, w.End.Hour, w.End.Minute, 0, 0, loc)
			}
			if now.Before(end) {
				return window{start, end, fmt.Sprintf("weekly freeze %s %02d:%02d to %s %02d:%02d %s",
					w.Start.Day.String()[:3], w.Start.Hour, w.Start.Minute,
					w.End.Day.String()[:3], w.End.Hour, w.End.Minute, loc)}, true
			}
			break
		}
	}
	return window{}, false
}

// FrozenUntil reports whether now is inside a freeze and, if so, when the
// freeze ends: windows that touch or overlap are followed to the end of the
// last one (a weekend freeze running into a dated one).
func (f *Freeze) FrozenUntil(now time.Time) (end time.Time, what string, frozen bool) {
	if f == nil {
		return time.Time{}, "", false
	}
	w, ok := f.covering(now)
	if !ok {
		return time.Time{}, "", false
	}
	end, what = w.end, w.what
	for range 64 { // bounded: windows cannot chain forever
		next, ok := f.covering(end)
		if !ok {
			break
		}
		end = next.end
	}
	return end, what, true
}
