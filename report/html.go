package report

import (
	"bytes"
	"fmt"
	"html/template"
	"io"
	"os"

	"github.com/domainflow/domainflow/schemas"
)

// WriteTo renders p as one self-contained HTML page (no external resources,
// no JavaScript needed) and writes it to w. Nothing is written when the
// page does not render.
func (p *Page) WriteTo(w io.Writer) (int64, error) {
	b, err := p.render()
	if err != nil {
		return 0, err
	}
	n, err := w.Write(b)
	return int64(n), err
}

// WriteFile renders p and writes it to path atomically (a reader sees the
// old file or the whole new one), readable by all (mode 0644: a page to
// share, not a secret).
func (p *Page) WriteFile(path string) error {
	b, err := p.render()
	if err != nil {
		return err
	}
	err = schemas.WriteFileAtomic(path, func(fh *os.File) error {
		if err := fh.Chmod(0o644); err != nil {
			return err
		}
		_, err := fh.Write(b)
		return err
	})
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return nil
}

func (p *Page) render() ([]byte, error) {
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, p); err != nil {
		return nil, fmt.Errorf("report: render: %w", err)
	}
	return buf.Bytes(), nil
}

// pageTemplate is the page. It needs no JavaScript; the one script only
// marks each figure whose image the browser decoded (data-rendered="ok"),
// for tests in a real browser.
var pageTemplate = template.Must(template.New("report").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="domainflow pipeline report">
<title>domainflow run report: {{.Dir}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
.meta { color: #666; margin-top: 0; }
figure { margin: 2em 0; padding: 1em; border: 1px solid #ddd; border-radius: 6px; }
figure img { max-width: 100%; height: auto; display: block; margin: 0 auto; }
figcaption { margin: 0.5em 0 1em; color: #444; }
figcaption strong { color: #222; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
caption { text-align: left; font-weight: 600; padding: 0.3em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
#counts td { text-align: right; }
#missing li { margin: 0.2em 0; }
code { font-size: 0.95em; }
</style>
</head>
<body>
<header>
<h1>domainflow run report</h1>
<p class="meta">Run output <code>{{.Dir}}</code>, report written {{.Generated}}.</p>
{{- if .Counts}}
<table id="counts">
<caption>Documents</caption>
<tr>{{range .Counts}}<th scope="col">{{.Label}}</th>{{end}}</tr>
<tr>{{range .Counts}}<td data-count="{{.Key}}">{{.Value}}</td>{{end}}</tr>
</table>
{{- else}}
<p id="counts-missing">No run counts: this dir has no summary.json.</p>
{{- end}}
</header>
<main>
{{- range .Tables}}
<section id="{{.ID}}" class="table-section">
<h2>{{.Title}}</h2>
{{- if .Note}}
<p>{{.Note}}</p>
{{- end}}
{{- if .Table.Rows}}
{{template "table" .Table}}
{{- end}}
</section>
{{- end}}
{{- range .Figures}}
<section>
<h2>{{.Title}}</h2>
<figure id="{{.ID}}" data-plot="{{.Plot}}" data-source="{{.Source}}" data-series="{{.Series}}">
<img {{.Image}} alt="{{.Alt}}">
<figcaption>{{.Caption}}</figcaption>
{{template "table" .Table}}
</figure>
</section>
{{- end}}
{{- if .Missing}}
<section id="missing">
<h2>Not shown</h2>
<ul>
{{- range .Missing}}
<li data-missing="{{.What}}"><code>{{.What}}</code>: {{.Why}}</li>
{{- end}}
</ul>
</section>
{{- end}}
</main>
<script>
(function () {
  function mark() {
    var figs = document.querySelectorAll("figure[data-plot]");
    for (var i = 0; i < figs.length; i++) {
      var img = figs[i].querySelector("img");
      var ok = img && img.complete && img.naturalWidth > 0 && img.naturalHeight > 0;
      figs[i].setAttribute("data-rendered", ok ? "ok" : "failed");
    }
  }
  if (document.readyState === "complete") { mark(); } else { window.addEventListener("load", mark); }
})();
</script>
</body>
</html>
{{- define "table"}}
<table>
<caption>{{.Caption}}</caption>
<thead><tr>{{range .Head}}<th scope="col">{{.}}</th>{{end}}</tr></thead>
<tbody>
{{- range .Rows}}
<tr>{{range .}}<td{{if .Num}} class="num"{{end}}>{{.Text}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- end}}
`))
