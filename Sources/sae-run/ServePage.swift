/// The page `sae-run serve` shows: plain HTML, CSS and JS, no network beyond its own two endpoints.
/// `/?prompt=...&feature=N` runs the feature view on load (used by the headless-browser test).
let servePage = #"""
<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nanosae</title>
<style>
 body { font: 15px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #222; }
 textarea { width: 100%; height: 5em; font: inherit; }
 #tokens span.tok { white-space: pre-wrap; border-radius: 3px; padding: 0 1px; cursor: default; }
 #tokens .gen { text-decoration: underline dotted #888; }
 .row { margin: .5em 0; } label { margin-right: 1em; } #hover { font: 12px monospace; color: #555; min-height: 3em; }
 #error { color: #b00; }
</style></head>
<body>
<h1>nanosae</h1>
<div class="row"><textarea id="prompt" placeholder="Type a prompt"></textarea></div>
<div class="row">
 <label>SAE <select id="sae"></select></label>
 <label>feature <input id="feature" type="number" min="0" value="0" style="width:6em"></label>
 <button id="show">Show features</button>
 <label>tokens <input id="ntok" type="number" min="1" max="256" value="32" style="width:5em"></label>
 <button id="gen">Generate</button>
</div>
<div class="row">steer feature <input id="steerf" type="number" min="0" value="0" style="width:6em">
 by <input id="steerv" type="range" min="-50" max="50" step="1" value="0"> <span id="steervv">0</span>
 <select id="mode"><option>add</option><option>clamp</option><option>scale</option></select></div>
<div id="error"></div>
<div id="tokens" class="row"></div>
<div id="hover"></div>
<script>
const $ = id => document.getElementById(id);
let saes = [];
async function call(path, body) {
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const j = await r.json().catch(() => ({error: r.statusText}));
  if (!r.ok) throw new Error(j.error ? (j.error.message || j.error) : r.statusText);
  return j;
}
function render(rows, generatedFrom) {
  const sae = +$("sae").value || 0, feature = +$("feature").value;
  let max = 1e-9;
  for (const r of rows) for (const s of r.saes) if (s.sae === sae) for (const [f, a] of s.features) if (f === feature) max = Math.max(max, a);
  const out = $("tokens"); out.innerHTML = "";
  rows.forEach((r, i) => {
    const span = document.createElement("span");
    span.className = "tok" + (generatedFrom !== undefined && i >= generatedFrom ? " gen" : "");
    span.textContent = r.token;
    const s = r.saes.find(s => s.sae === sae);
    const hit = s ? s.features.find(([f]) => f === feature) : null;
    const a = hit ? hit[1] : 0;
    span.dataset.activation = a.toFixed(3);
    span.style.background = `rgba(255,120,0,${Math.min(1, a / max)})`;
    span.title = s ? s.features.slice(0, 8).map(([f, v]) => `${f}: ${v.toFixed(2)}`).join("\n") : "";
    span.onmouseenter = () => { $("hover").textContent = `${JSON.stringify(r.token)} id ${r.id}: ` + span.title.replaceAll("\n", "  "); };
    out.appendChild(span);
  });
}
async function show() {
  $("error").textContent = "";
  try {
    const j = await call("/api/features", {prompt: $("prompt").value, top: 20});
    saes = j.saes;
    if (!$("sae").options.length) saes.forEach((s, i) => $("sae").add(new Option(`${s.hook} (${s.d_sae})`, i)));
    render(j.tokens);
  } catch (e) { $("error").textContent = e.message; }
}
async function gen() {
  $("error").textContent = "";
  const v = +$("steerv").value, sae = saes[+$("sae").value || 0];
  const steer = v !== 0 && sae ? [{hook: sae.hook, feature: +$("steerf").value, value: v, mode: $("mode").value, scope: "gen"}] : [];
  try {
    const j = await call("/api/generate", {prompt: $("prompt").value, max_tokens: +$("ntok").value, steer});
    const promptRows = j.rows.length - j.tokens.length + 1;
    render(j.rows, promptRows);
  } catch (e) { $("error").textContent = e.message; }
}
$("show").onclick = show; $("gen").onclick = gen;
$("feature").onchange = show; $("sae").onchange = show;
$("steerv").oninput = () => { $("steervv").textContent = $("steerv").value; };
const q = new URLSearchParams(location.search);
if (q.get("prompt")) { $("prompt").value = q.get("prompt"); if (q.get("feature")) $("feature").value = q.get("feature"); show(); }
</script>
</body></html>
"""#
