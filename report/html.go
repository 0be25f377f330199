package report

import (
	"encoding/json"
	"html"
	"io"
	"math"
	"strings"
)

// Page is a report as one self-contained HTML page: the facts of the
// testbed, then sections (a run, or a step of a procedure) each with its
// verdict, a table and per-second charts. The page carries its data as
// JSON and draws it with an inline script: no external scripts, styles or
// fonts, so it opens offline and can be mailed as one file.
type Page struct {
	Title    string        `json:"title"`
	Facts    [][2]string   `json:"facts,omitempty"`
	Sections []PageSection `json:"sections"`
}

// PageSection is one run on the page.
type PageSection struct {
	// ID names the section's table (data-table) and charts (data-chart,
	// ID-N) in the page, for readers and tests; the index when empty.
	ID    string `json:"id,omitempty"`
	Title string `json:"title"`
	// Verdict is a sentence; Pass colours it (nil: no verdict colour).
	Verdict string `json:"verdict,omitempty"`
	Pass    *bool  `json:"pass,omitempty"`
	Table   *Table `json:"table,omitempty"`
	// Phases shade the charts' time axis (ramp up, sustain ...).
	Phases []Phase  `json:"phases,omitempty"`
	Charts []Chart  `json:"charts,omitempty"`
	Notes  []string `json:"notes,omitempty"`
}

// Table is a table of the page; a row's Class ("pass", "fail") colours it.
type Table struct {
	Header []string   `json:"header"`
	Rows   []TableRow `json:"rows"`
}

// TableRow is one row of a Table.
type TableRow struct {
	Cells []string `json:"cells"`
	Class string   `json:"class,omitempty"`
}

// Phase is a named span of a run's time axis, in seconds from its start.
type Phase struct {
	Name string  `json:"name"`
	From float64 `json:"from"`
	To   float64 `json:"to"`
}

// Chart is one chart of a section: series over the run's seconds.
type Chart struct {
	Title string `json:"title"`
	Unit  string `json:"unit"`
	// T are the seconds (each series has a value per second).
	T      []int    `json:"t"`
	Series []Series `json:"series"`
}

// Series is one line of a chart.
type Series struct {
	Name   string    `json:"name"`
	Values []float64 `json:"values"`
}

// TimelineCharts are the four charts of a run's timeline: the rate asked
// and achieved, what was in flight and open, the latency quantiles, and
// the failures of each second.
func TimelineCharts(secs []Second) []Chart {
	n := len(secs)
	t := make([]int, n)
	col := func() []float64 { return make([]float64, n) }
	asked, est, ok, inflight, open, askedOpen := col(), col(), col(), col(), col(), col()
	rtt50, rtt99, ttlb50, ttlb99 := col(), col(), col(), col()
	hsFailed, reqFailed, bad, reset := col(), col(), col(), col()
	requests, ramped := false, false
	for i, s := range secs {
		t[i] = s.T
		asked[i], est[i] = s.AskedRate, float64(s.Established)
		inflight[i], open[i], askedOpen[i] = float64(s.InFlight), float64(s.Open), s.AskedOpen
		ramped = ramped || s.AskedOpen > 0
		rtt50[i], rtt99[i] = 1e3*s.RTT.P50, 1e3*s.RTT.P99
		ttlb50[i], ttlb99[i] = 1e3*s.TTLB.P50, 1e3*s.TTLB.P99
		for class, c := range s.Responses {
			if class == "2xx" {
				ok[i] += float64(c)
			} else {
				bad[i] += float64(c)
			}
			requests = true
		}
		for _, c := range s.RequestsFailed {
			reqFailed[i] += float64(c)
			requests = true
		}
		for _, c := range s.Failed {
			hsFailed[i] += float64(c)
		}
		reset[i] = float64(s.Reset)
	}
	rate := Chart{Title: "rate", Unit: "per second", T: t, Series: []Series{{"asked", asked}, {"established", est}}}
	latency := Chart{Title: "latency", Unit: "ms", T: t, Series: []Series{{"handshake RTT p50", rtt50}, {"handshake RTT p99", rtt99}}}
	fails := Chart{Title: "failures", Unit: "per second", T: t, Series: []Series{{"handshakes failed", hsFailed}, {"reset by the peer", reset}}}
	if requests {
		rate.Series = append(rate.Series, Series{"responses 2xx", ok})
		latency.Series = append(latency.Series, Series{"time to last byte p50", ttlb50}, Series{"time to last byte p99", ttlb99})
		fails.Series = append(fails.Series, Series{"requests failed", reqFailed}, Series{"responses not 2xx", bad})
	}
	conns := Chart{Title: "connections", Unit: "connections", T: t, Series: []Series{{"in flight", inflight}, {"open", open}}}
	if ramped {
		conns.Series = append(conns.Series, Series{"open asked", askedOpen})
	}
	return []Chart{rate, conns, latency, fails}
}

// WriteHTML writes p as one HTML page.
func WriteHTML(w io.Writer, p *Page) error {
	data, err := json.Marshal(p) // escapes <, > and &: safe inside <script>
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>")
	b.WriteString(html.EscapeString(p.Title))
	b.WriteString("</title>\n<style>")
	b.WriteString(pageStyle)
	b.WriteString("</style></head><body>\n<main id=\"report\"><h1>")
	b.WriteString(html.EscapeString(p.Title))
	b.WriteString("</h1><noscript>The charts and tables are drawn by the page's inline script; the data is in the element report-data.</noscript></main>\n")
	b.WriteString("<script type=\"application/json\" id=\"report-data\">")
	b.Write(data)
	b.WriteString("</script>\n<script>")
	b.WriteString(pageScript)
	b.WriteString("</script>\n</body></html>\n")
	_, err = io.WriteString(w, b.String())
	return err
}

// NiceCeil is the chart's axis top for a largest value v: the next of 1,
// 2, 2.5 and 5 times a power of ten at or above v (1 for nothing).
func NiceCeil(v float64) float64 {
	if v <= 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*p >= v*(1-1e-12) {
			return m * p
		}
	}
	return 10 * p
}

// The chart geometry, shared by the script and the tests that read a
// rendered chart back: the plot spans x in [ChartLeft, ChartRight] and y
// in [ChartTop, ChartBottom] of a ChartWidth x ChartHeight view box.
const (
	ChartWidth, ChartHeight = 640, 190
	ChartLeft, ChartRight   = 60, 630
	ChartTop, ChartBottom   = 12, 160
)

const pageStyle = `
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1340px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-top:1px solid #ccc;padding-top:12px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.pass td:first-child,.verdict.pass{color:#11703a}tr.fail td:first-child,.verdict.fail{color:#b3261e;font-weight:600}
.charts{display:flex;flex-wrap:wrap;gap:8px}.chart{width:640px}.chart h3{font-size:13px;margin:4px 0}
.legend span{margin-right:12px;font-size:12px}.legend i{display:inline-block;width:14px;height:3px;margin-right:4px;vertical-align:middle}
svg text{font-size:11px;fill:#444}.phase text{fill:#666}
`

// pageScript draws the page from report-data. Its chart geometry is the
// Chart* constants (checked by the tests that read charts back). Each
// series is drawn thinner than the one before, so a series equal to an
// earlier one (established = asked) still shows both.
const pageScript = `
"use strict";
(function(){
var W=640,H=190,L=60,R=630,T=12,B=160;
var colours=["#1f5fbf","#d1495b","#2a9d4b","#e08e0b","#7b4fb0"];
var data=JSON.parse(document.getElementById("report-data").textContent);
var main=document.getElementById("report");
var NS="http://www.w3.org/2000/svg";
function el(tag,attrs,text,ns){var e=ns?document.createElementNS(NS,tag):document.createElement(tag);
 for(var k in attrs||{})e.setAttribute(k,attrs[k]);if(text!==undefined)e.textContent=text;return e;}
function niceCeil(v){if(!(v>0)||!isFinite(v))return 1;var p=Math.pow(10,Math.floor(Math.log10(v)));
 var ms=[1,2,2.5,5,10];for(var i=0;i<ms.length;i++)if(ms[i]*p>=v*(1-1e-12))return ms[i]*p;return 10*p;}
function fmt(v){return String(Math.round(v*1e6)/1e6);}
function chart(c,phases,id){
 var box=el("div",{"class":"chart"});box.appendChild(el("h3",{},c.title+" ("+c.unit+")"));
 var max=0;c.series.forEach(function(s){s.values.forEach(function(v){if(v>max)max=v;});});
 var top=niceCeil(max),t0=c.t.length?c.t[0]:0,t1=c.t.length?c.t[c.t.length-1]+1:1;
 var x=function(t){return L+(t-t0)/(t1-t0)*(R-L);},y=function(v){return B-v/top*(B-T);};
 var svg=el("svg",{viewBox:"0 0 "+W+" "+H,width:W,height:H,"data-chart":id,"data-top":fmt(top)},undefined,true);
 (phases||[]).forEach(function(p,i){var a=Math.max(p.from,t0),b=Math.min(p.to,t1);if(b<=a)return;
  var g=el("g",{"class":"phase"},undefined,true);
  g.appendChild(el("rect",{x:x(a),y:T,width:x(b)-x(a),height:B-T,fill:i%2?"#f3f3f3":"#e9eef7"},undefined,true));
  g.appendChild(el("text",{x:x(a)+3,y:T+11},p.name,true));svg.appendChild(g);});
 svg.appendChild(el("line",{x1:L,y1:B,x2:R,y2:B,stroke:"#888"},undefined,true));
 svg.appendChild(el("line",{x1:L,y1:T,x2:L,y2:B,stroke:"#888"},undefined,true));
 svg.appendChild(el("text",{x:L-4,y:T+4,"text-anchor":"end","class":"ytop"},fmt(top),true));
 svg.appendChild(el("text",{x:L-4,y:B,"text-anchor":"end"},"0",true));
 svg.appendChild(el("text",{x:L,y:B+14},String(t0)+" s",true));
 svg.appendChild(el("text",{x:R,y:B+14,"text-anchor":"end"},String(t1)+" s",true));
 var legend=el("div",{"class":"legend"});
 c.series.forEach(function(s,i){var col=colours[i%colours.length],pts=[];
  for(var j=0;j<s.values.length;j++)pts.push(x(c.t[j]+0.5).toFixed(2)+","+y(s.values[j]).toFixed(2));
  svg.appendChild(el("polyline",{points:pts.join(" "),fill:"none",stroke:col,"stroke-width":Math.max(3.2-0.7*i,1),"data-series":s.name},undefined,true));
  var item=el("span");item.appendChild(el("i",{style:"background:"+col}));item.appendChild(document.createTextNode(s.name));legend.appendChild(item);});
 box.appendChild(svg);box.appendChild(legend);return box;}
function table(tb,id){var t=el("table",{"data-table":id}),h=el("tr");
 tb.header.forEach(function(c){h.appendChild(el("th",{},c));});t.appendChild(h);
 tb.rows.forEach(function(r){var tr=el("tr",r["class"]?{"class":r["class"]}:{});
  r.cells.forEach(function(c){tr.appendChild(el("td",/^[-+]?[0-9.,]+( ?[%a-zµ\/]+)?$/.test(c)?{"class":"num"}:{},c));});t.appendChild(tr);});
 return t;}
if(data.facts&&data.facts.length){var ft=el("table",{"data-table":"facts"});
 data.facts.forEach(function(f){var tr=el("tr");tr.appendChild(el("th",{},f[0]));tr.appendChild(el("td",{},f[1]));ft.appendChild(tr);});main.appendChild(ft);}
data.sections.forEach(function(s,i){if(s.id)i=s.id;var sec=el("section",{"data-section":i});sec.appendChild(el("h2",{},s.title));
 if(s.verdict)sec.appendChild(el("p",{"class":"verdict"+(s.pass===undefined?"":s.pass?" pass":" fail")},s.verdict));
 if(s.table)sec.appendChild(table(s.table,i));
 (s.notes||[]).forEach(function(n){sec.appendChild(el("p",{"class":"note"},n));});
 var cs=el("div",{"class":"charts"});(s.charts||[]).forEach(function(c,j){cs.appendChild(chart(c,s.phases,i+"-"+j));});
 sec.appendChild(cs);main.appendChild(sec);});
document.body.setAttribute("data-rendered","yes");
})();
`
