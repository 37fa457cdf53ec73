package faults

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"
)

// summary is a row in one line, for progress.
func summary(r Row) string {
	return fmt.Sprintf("%d sent, %d failed%s; during the fault p50 %s p99 %s max %s; served elsewhere after %s, back %s; marked down %s, up %s%s; budget spent %s; page: %s; ticket: %s",
		r.Sent, r.Failed, failures(r, " (", ")"), ms(r.P50), ms(r.P99), ms(r.Max), moved(r), back(r),
		optional(r.Down, r.NotDown, "never"), up(r), exit(r, "; "), r.Burn.budget(), r.Burn.page(r.Injected), r.Burn.ticket(r.Injected))
}

// Failed reports the rows that missed their goal: a fault whose goal is zero
// failed requests lost some with retries on, or would have paged someone.
func Failed(rows []Row) []Row {
	var missed []Row
	for _, r := range rows {
		if r.Retries && r.Fault.GoalZero && (r.Failed > 0 || r.Burn.Paged) {
			missed = append(missed, r)
		}
	}
	return missed
}

// WriteTable writes rows as a Markdown table.
func WriteTable(w io.Writer, rows []Row) {
	fmt.Fprintln(w, "| fault | retries | sent | failed | failures by kind | p50 | p99 | max | served elsewhere after | LB marked it down after | back after healing | LB marked it up after | instance | budget spent (availability / latency) | page | ticket |")
	fmt.Fprintln(w, "|---|---|--:|--:|---|--:|--:|--:|--:|--:|--:|--:|---|--:|---|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Fault.Name, onOff(r.Retries), r.Sent, r.Failed, failures(r, "", ""),
			ms(r.P50), ms(r.P99), ms(r.Max), moved(r), optional(r.Down, r.NotDown, "never"),
			back(r), up(r), exit(r, ""), r.Burn.budget(), r.Burn.page(r.Injected), r.Burn.ticket(r.Injected))
	}
}

func failures(r Row, open, close string) string {
	if len(r.Failures) == 0 {
		return ""
	}
	kinds := make([]string, 0, len(r.Failures))
	for k := range r.Failures {
		kinds = append(kinds, k)
	}
	slices.SortFunc(kinds, func(a, b string) int { return r.Failures[b] - r.Failures[a] })
	var parts []string
	for _, k := range kinds {
		parts = append(parts, fmt.Sprintf("%d %s", r.Failures[k], k))
	}
	return open + strings.Join(parts, ", ") + close
}

// WriteFaults writes what each fault does, as a Markdown list.
func WriteFaults(w io.Writer) {
	for _, f := range Matrix() {
		goal := "goal: none lost, and no page, with retries on"
		if !f.GoalZero {
			goal = "no goal of zero"
		}
		fmt.Fprintf(w, "- **%s**: %s (%s)\n", f.Name, f.How, goal)
	}
}

func optional(d time.Duration, not bool, word string) string {
	if not {
		return word
	}
	return seconds(d)
}

// up is when the load balancer took the region back, or "-" if it never
// marked it down.
func up(r Row) string {
	if r.NotDown {
		return "-"
	}
	return optional(r.Up, r.NotUp, "never")
}

func moved(r Row) string {
	if r.NotMoved {
		return "not moved"
	}
	return seconds(r.Moved)
}

func back(r Row) string {
	if r.NotBack {
		return "not back"
	}
	return seconds(r.Back)
}

func exit(r Row, prefix string) string {
	if r.Exit == "" {
		if prefix != "" {
			return ""
		}
		return "-"
	}
	return prefix + r.Exit
}

func ms(d time.Duration) string {
	return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
}

func seconds(d time.Duration) string {
	return fmt.Sprintf("%.2f s", d.Seconds())
}

// releaseSummary is a release row in one line, for progress.
func releaseSummary(r ReleaseRow) string {
	s := fmt.Sprintf("%s load: %d sent from the release's start to its end (%s), %d failed%s; synthetic: %d sent, %d failed%s; %s; traffic given in %s; served by %s; budget spent %s; page: %s; ticket: %s",
		r.Release.Load, r.Sent, seconds(r.Window), r.Failed, failures(Row{Failures: r.Failures}, " (", ")"), r.Synthetic, r.SyntheticFailed, failures(Row{Failures: r.SyntheticFailures}, " (", ")"), detection(r), reached(r), servedBy(r),
		r.Burn.budget(), r.Burn.page(r.Traffic), r.Burn.ticket(r.Traffic))
	if miss := MissedRelease(r); miss != "" {
		s += "; MISSED: " + miss
	}
	return s
}

// FailedReleases returns the release rows that missed their goals.
func FailedReleases(rows []ReleaseRow) []ReleaseRow {
	var missed []ReleaseRow
	for _, r := range rows {
		if MissedRelease(r) != "" {
			missed = append(missed, r)
		}
	}
	return missed
}

// WriteReleaseTable writes release rows as a Markdown table.
func WriteReleaseTable(w io.Writer, rows []ReleaseRow) {
	fmt.Fprintln(w, "| release | delivery | users' load | sent | failed | failed, % | failures by kind | synthetic requests (failed) | detected after | rolled back after | traffic given to it | served the new version | budget spent (availability / latency) | page | ticket | goal |")
	fmt.Fprintln(w, "|---|---|---|--:|--:|--:|---|--:|--:|--:|---|---|--:|---|---|---|")
	for _, r := range rows {
		goal := "contrast"
		if ReleaseGoal(r.Release) != "" {
			goal = "met"
			if miss := MissedRelease(r); miss != "" {
				goal = "**missed**: " + miss
			}
		}
		fmt.Fprintf(w, "| %s | %s | %s | %d | %d | %s | %s | %d (%d) | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Release.Version, r.Release.Delivery, r.Release.Load, r.Sent, r.Failed, percent(r.Failed, r.Sent), failures(Row{Failures: r.Failures}, "", ""),
			r.Synthetic, r.SyntheticFailed, optional(r.Detect, !r.Detected, "-"), optional(r.Rollback, !r.RolledBack, "-"), reached(r), servedBy(r),
			r.Burn.budget(), r.Burn.page(r.Traffic), r.Burn.ticket(r.Traffic), goal)
	}
}

// WriteReleases writes what each release row does, as a Markdown list.
func WriteReleases(w io.Writer) {
	for _, r := range Releases() {
		goal := ReleaseGoal(r)
		if goal == "" {
			goal = "the contrast: no goal"
		}
		fmt.Fprintf(w, "- **%s, %s** (`%s`): goal: %s\n", r.Version, r.Delivery, r.ID, goal)
	}
}

func detection(r ReleaseRow) string {
	switch {
	case r.Detected && r.RolledBack:
		return fmt.Sprintf("detected %s after its first traffic (%s), rolled back %s later", seconds(r.Detect), r.Why, seconds(r.Rollback))
	case r.Detected:
		return "detected, not rolled back"
	}
	return "not rolled back"
}

// servedBy lists the regions that answered with the new version, and for how long.
func servedBy(r ReleaseRow) string {
	if len(r.Served) == 0 {
		return "none"
	}
	var parts []string
	for _, region := range slices.Sorted(maps.Keys(r.Served)) {
		parts = append(parts, fmt.Sprintf("%s %s", region, seconds(r.Served[region])))
	}
	s := strings.Join(parts, ", ")
	if r.Everywhere {
		s += "; all answers at the end"
	}
	return s
}

// reached lists the regions whose traffic the new version was given a share
// of, with the highest share.
func reached(r ReleaseRow) string {
	var parts []string
	for _, region := range slices.Sorted(maps.Keys(r.Reached)) {
		if pct := r.Reached[region]; pct > 0 {
			parts = append(parts, fmt.Sprintf("%s %d %%", region, pct))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func percent(n, of int) string {
	if of == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f %%", 100*float64(n)/float64(of))
}
