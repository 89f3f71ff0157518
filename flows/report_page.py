"""The bake-off report's Jinja template (autoescaped by ``flows.report_html``): one page, no script."""

CSS = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header,section.task{max-width:1320px;margin:0 auto;padding:12px 28px}
header{border-bottom:1px solid #dde1e7;background:#fff;max-width:none}
h1{font-size:24px;margin:6px 0}h2{font-size:20px;margin:22px 0 6px}h3{font-size:16px;margin:18px 0 6px}
.meta,.note{color:#5b6575;font-size:13px}
.summary{font-size:16px;background:#fff;border-left:4px solid #2f6fd6;padding:10px 14px;margin:10px 0}
table{border-collapse:collapse;background:#fff;font-size:13.5px;margin:6px 0 4px}
th,td{border:1px solid #dde1e7;padding:5px 9px;text-align:right;vertical-align:top}
td{white-space:nowrap}code{font-size:12px;color:#4a5463}
th{background:#eef1f5}td.name,th.name{text-align:left;white-space:nowrap}
th.lead,td.lead{background:#fff6dc}tr.baseline td{color:#4a5463;background:#fafbfc}
tr.champion td{font-weight:600}tr.champion td.lead,td.best{background:#ffe9a8}
.badge{display:inline-block;font-size:11px;font-weight:700;border-radius:8px;padding:0 7px;margin-left:6px;
background:#2f6fd6;color:#fff}.badge.base{background:#8a94a3}
.refused{color:#b3261e}.accepted{color:#1e7b34}details{text-align:left;max-width:260px}
summary{cursor:default;white-space:nowrap}details span{white-space:normal}
nav a{margin-right:14px}a{color:#2458b3}
.plots{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:14px}
figure{margin:0;background:#fff;border:1px solid #dde1e7;padding:8px}
figure img{max-width:100%;height:auto;display:block;margin:0 auto}figcaption{font-size:12.5px;color:#5b6575}
"""

TEMPLATE = (
    """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>seqops bake-off report</title>
<style>"""
    + CSS
    + """</style></head>
<body>
<header>
<h1>seqops bake-off report</h1>
<div class="meta">Made {{ created }} from MLflow at {{ tracking }}. Test split, scored through onnxruntime.
Star: the promotion metric. Highlighted row: the champion.</div>
<nav>{% for t in tasks %}<a href="#{{ t.anchor }}">{{ t.report.task }}</a>{% endfor %}</nav>
</header>
{% for t in tasks %}{% set r = t.report %}
<section class="task" id="{{ t.anchor }}">
<h2>{{ r.task }}</h2>
<p class="summary">{{ t.summary }}</p>
<div class="meta">Latest pipeline run:
{% if t.parent_link %}<a href="{{ t.parent_link }}">{{ r.run_name }}</a>{% else %}{{ r.run_name }}{% endif %}
 (run {{ r.parent_run_id }}{% if t.experiment_link %}, <a href="{{ t.experiment_link }}">experiment</a>
{%- else %}, experiment {{ r.experiment_id }}{% endif %}), data {{ r.fingerprint or "unknown" }}.
Promotion: {{ r.promotion or "none recorded" }}.</div>
<h3>Cells and baselines</h3>
<table>
<thead><tr><th class="name">model</th><th>version</th>
{% for h in t.headers %}
<th{% if loop.first %} class="lead" title="promotion metric, {{ t.better }}"{% endif %}>
{{ h }}{% if loop.first %} ★ ({{ "↑" if r.direction == "max" else "↓" }}){% endif %}</th>{% endfor %}
<th>ONNX KB</th><th>ms / row</th><th>train s</th><th>int8 Δ {{ r.metric }}</th><th>int8 gate</th>
<th>parity error</th><th class="name">run</th></tr></thead>
<tbody>
{% for v in t.rows %}{% set row = v.row %}
<tr class="{{ 'champion' if v.champion }}{{ ' baseline' if v.baseline }}">
<td class="name">{{ row.name }}{% if v.champion %}<span class="badge">champion</span>{% endif %}
{%- if v.baseline %}<span class="badge base">baseline</span>{% endif %}
{%- if row.seeds %} <span class="note">({{ row.seeds }} seeds)</span>{% endif %}</td>
<td>{% if v.version_link %}<a href="{{ v.version_link }}">{{ row.version }}</a>
{%- else %}{{ row.version or "" }}{% endif %}</td>
{% for s in v.scores %}
<td class="{{ 'lead' if loop.first }}{{ ' best' if loop.first and v.best }}">{{ s }}</td>
{% endfor %}
<td>{{ row.ship.onnx_kb | number }}</td><td>{{ row.ship.ms_per_row | number }}</td>
<td>{{ row.ship.train_seconds | number }}</td>
<td>{{ "%+.3g" | format(v.int8_delta) if v.int8_delta is not none else "" }}</td>
<td>{% if row.int8 %}<details><summary class="{{ row.int8[0] }}">{{ row.int8[0] }}</summary>
<span class="note">{{ row.int8[1] }}</span></details>{% endif %}</td>
<td>{{ row.ship.parity_error | number }}</td>
<td class="name">{% if v.link %}<a href="{{ v.link }}">{{ row.run_id[:8] }}</a>
{%- else %}<code>{{ row.run_id or "" }}</code>{% endif %}</td>
</tr>
{% endfor %}
</tbody></table>
<div class="note">{{ r.metric }} is the promotion metric ({{ t.better }}).
{% if t.seeded %}With seeds: scores are mean ± sd over the seeds; size, speed and int8 are of the seed
registered.
{% endif %}int8 Δ: the int8 model's {{ r.metric }} minus the fp32 model's. Baselines are scored on the same
test split and never registered.</div>
<h3>Champion history</h3>
{% if t.history %}
<table>
<thead><tr><th>version</th><th class="name">cell</th><th>{{ r.metric }}</th><th class="name">data</th>
<th class="name">registered</th><th class="name">champion</th><th class="name">held the title</th>
<th class="name">run</th></tr></thead>
<tbody>
{% for h in t.history %}{% set v = h.version %}
<tr class="{{ 'champion' if v.champion }}">
<td>{% if h.link %}<a href="{{ h.link }}">{{ v.version }}</a>{% else %}{{ v.version }}{% endif %}</td>
<td class="name">{{ v.cell }}</td><td class="lead">{{ v.score | number }}</td>
<td class="name">{{ v.fingerprint }}{% if v.fingerprint == r.fingerprint %} (this run's){% endif %}</td>
<td class="name">{{ v.created | when }}</td>
<td class="name">{% if v.champion %}<span class="badge">champion</span>{% endif %}</td>
<td class="name">{{ ("since " ~ v.held) if v.held else "" }}</td>
<td class="name">{% if h.run_link %}<a href="{{ h.run_link }}">{{ v.run_id[:8] }}</a>
{%- else %}<code>{{ v.run_id }}</code>{% endif %}</td>
</tr>
{% endfor %}
</tbody></table>
{% else %}<p class="note">No version of seqops-{{ r.task }} is registered yet.</p>{% endif %}
<h3>Plots</h3>
{% for row in t.plotted %}
<h3 class="note">{{ row.name }}{% if row.run_id %} (run {{ row.run_id }}){% endif %}</h3>
<div class="plots">{% for p in row.plots %}<figure>
{% if p.data_uri %}<img src="{{ p.data_uri }}" alt="{{ row.name }}: {{ p.name }}">{% endif %}
<figcaption>{{ p.name }}{% if not p.data_uri %} (too big to embed: open it in MLflow){% endif %}</figcaption>
</figure>{% endfor %}</div>
{% endfor %}
{% if r.plots %}
<h3 class="note">pipeline run {{ r.run_name }}</h3>
<div class="plots">{% for p in r.plots %}<figure>
{% if p.data_uri %}<img src="{{ p.data_uri }}" alt="{{ r.task }}: {{ p.name }}">{% endif %}
<figcaption>{{ p.name }}</figcaption></figure>{% endfor %}</div>
{% endif %}
{% if not t.plotted and not r.plots %}<p class="note">The runs hold no PNG.</p>{% endif %}
</section>
{% endfor %}
</body></html>
"""
)
