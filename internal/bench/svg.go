package bench

import (
	"encoding/xml"
	"fmt"
	"math"
	"strings"
)

// Chart is a line chart (X, Y pairs per series) or a grouped bar chart (Categories, with one Y
// per category per series), drawn as SVG with the standard library only.
type Chart struct {
	File   string
	Title  string
	XLabel string
	YLabel string
	LogX   bool
	LogY   bool
	// Bars draws grouped bars over Categories instead of lines.
	Bars       bool
	Categories []string
	Series     []Series
}

// Series is one line, or one colour of bars.
type Series struct {
	Name string
	X    []float64
	Y    []float64
}

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"}

const (
	svgW, svgH                     = 760, 440
	padL, padR, padT, padB float64 = 80, 200, 40, 70
)

// SVG renders the chart as a standalone SVG document.
func (c Chart) SVG() string {
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", svgW, svgH, svgW, svgH)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", svgW, svgH)
	text(&b, svgW/2, 22, "middle", 15, c.Title)

	x0, x1, y0, y1 := padL, float64(svgW)-padR, float64(svgH)-padB, padT
	ylo, yhi := c.yRange()
	yAxis := axis{lo: ylo, hi: yhi, log: c.LogY, from: y0, to: y1}
	var xAxis axis
	if !c.Bars {
		xlo, xhi := c.xRange()
		xAxis = axis{lo: xlo, hi: xhi, log: c.LogX, from: x0, to: x1}
	}

	// Grid and y ticks.
	for _, t := range yAxis.ticks() {
		y := yAxis.pos(t)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x0, y, x1, y)
		text(&b, x0-6, y+4, "end", 11, num(t))
	}
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x0, y0, x1, y0)
	fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x0, y0, x0, y1)
	fmt.Fprintf(&b, `<text x="18" y="%.1f" text-anchor="middle" font-size="12" transform="rotate(-90 18 %.1f)">%s</text>`+"\n",
		(y0+y1)/2, (y0+y1)/2, esc(c.YLabel))
	text(&b, (x0+x1)/2, float64(svgH)-18, "middle", 12, c.XLabel)

	if c.Bars {
		c.drawBars(&b, x0, x1, yAxis)
	} else {
		for _, t := range xAxis.ticks() {
			x := xAxis.pos(t)
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="black"/>`+"\n", x, y0, x, y0+5)
			text(&b, x, y0+18, "middle", 11, num(t))
		}
		for i, s := range c.Series {
			col := palette[i%len(palette)]
			var pts []string
			for j := range s.X {
				if j >= len(s.Y) || !yAxis.ok(s.Y[j]) || !xAxis.ok(s.X[j]) {
					continue
				}
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", xAxis.pos(s.X[j]), yAxis.pos(s.Y[j])))
			}
			if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", col, strings.Join(pts, " "))
			}
			for _, p := range pts {
				xy := strings.Split(p, ",")
				fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", xy[0], xy[1], col)
			}
		}
	}

	// Legend.
	for i, s := range c.Series {
		y := padT + 10 + float64(i)*18
		fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="12" height="12" fill="%s"/>`+"\n", x1+12, y-10, palette[i%len(palette)])
		text(&b, x1+30, y, "start", 11, s.Name)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func (c Chart) drawBars(b *strings.Builder, x0, x1 float64, yAxis axis) {
	n := len(c.Categories)
	if n == 0 || len(c.Series) == 0 {
		return
	}
	group := (x1 - x0) / float64(n)
	bar := group * 0.8 / float64(len(c.Series))
	base := yAxis.pos(yAxis.lo)
	for ci, cat := range c.Categories {
		gx := x0 + float64(ci)*group + group*0.1
		for si, s := range c.Series {
			if ci >= len(s.Y) || !yAxis.ok(s.Y[ci]) {
				continue
			}
			y := yAxis.pos(s.Y[ci])
			fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s: %s</title></rect>`+"\n",
				gx+float64(si)*bar, y, bar, math.Max(base-y, 0), palette[si%len(palette)], esc(s.Name), num(s.Y[ci]))
		}
		cx := x0 + (float64(ci)+0.5)*group
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="10" transform="rotate(-30 %.1f %.1f)">%s</text>`+"\n",
			cx, yAxis.from+14, cx, yAxis.from+14, esc(cat))
	}
}

func (c Chart) xRange() (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, x := range s.X {
			if c.LogX && x <= 0 {
				continue
			}
			lo, hi = math.Min(lo, x), math.Max(hi, x)
		}
	}
	return fixRange(lo, hi, c.LogX, false)
}

func (c Chart) yRange() (float64, float64) {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, y := range s.Y {
			if c.LogY && y <= 0 {
				continue
			}
			lo, hi = math.Min(lo, y), math.Max(hi, y)
		}
	}
	return fixRange(lo, hi, c.LogY, !c.LogY)
}

// fixRange widens a data range to a drawable one: powers of ten on a log axis, from zero on a
// linear one when fromZero.
func fixRange(lo, hi float64, log, fromZero bool) (float64, float64) {
	if math.IsInf(lo, 0) || math.IsInf(hi, 0) {
		return 1, 10
	}
	if log {
		return math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)+1e-9))
	}
	if fromZero {
		lo = math.Min(lo, 0)
	}
	if hi == lo {
		hi = lo + 1
	}
	return lo, hi + (hi-lo)*0.05
}

// axis maps data values to pixels.
type axis struct {
	lo, hi   float64
	log      bool
	from, to float64
}

func (a axis) ok(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && (!a.log || v > 0) }

func (a axis) pos(v float64) float64 {
	var f float64
	if a.log {
		f = (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	} else {
		f = (v - a.lo) / (a.hi - a.lo)
	}
	return a.from + f*(a.to-a.from)
}

func (a axis) ticks() []float64 {
	var ts []float64
	if a.log {
		for p := math.Log10(a.lo); p <= math.Log10(a.hi)+1e-9; p++ {
			ts = append(ts, math.Pow(10, p))
		}
		return ts
	}
	step := niceStep((a.hi - a.lo) / 5)
	for t := math.Ceil(a.lo/step) * step; t <= a.hi+1e-9; t += step {
		ts = append(ts, t)
	}
	return ts
}

func niceStep(raw float64) float64 {
	if raw <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if raw <= m*p {
			return m * p
		}
	}
	return 10 * p
}

func text(b *strings.Builder, x, y float64, anchor string, size int, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="%s" font-size="%d">%s</text>`+"\n", x, y, anchor, size, esc(s))
}

func esc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}
