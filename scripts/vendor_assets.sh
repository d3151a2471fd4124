#!/usr/bin/env bash
# Re-creates src/parity/web/static/vendor/ from the package registries (npm and PyPI).
#
# Why vendored at all: the dashboard must work on NHS networks with no internet access and under a strict
# Content-Security-Policy, so nothing may be loaded from a CDN at run time. This script is the only place
# that talks to a registry; the app only ever serves the files it writes.
#
# Usage: scripts/vendor_assets.sh            (versions below; override with NHSUK_VERSION / VLC_VERSION)
set -euo pipefail

NHSUK_VERSION="${NHSUK_VERSION:-10.6.1}"
VLC_VERSION="${VLC_VERSION:-1.9.0.post1}"
# Licence texts of the JavaScript libraries inside the vl-convert bundle; the bundle itself has none.
VEGA_LICENCE_PACKAGES=(vega vega-lite vega-embed)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="$ROOT/src/parity/web/static/vendor"
PYTHON="${PYTHON:-python3}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

# ---------------------------------------------------------------- NHS.UK frontend (npm)
echo "nhsuk-frontend $NHSUK_VERSION"
(cd "$WORK" && npm pack --silent "nhsuk-frontend@$NHSUK_VERSION" >/dev/null && tar xzf "nhsuk-frontend-$NHSUK_VERSION.tgz")
DIST="$WORK/package/dist/nhsuk"
NHSUK="$VENDOR/nhsuk"
rm -rf "$NHSUK"
mkdir -p "$NHSUK/assets/images"
cp "$DIST"/assets/images/* "$NHSUK/assets/images/"
cp "$DIST/assets/manifest.json" "$NHSUK/assets/manifest.json"
cp "$DIST/nhsuk-frontend.min.js" "$NHSUK/nhsuk-frontend.min.js"
cp "$DIST/nhsuk-frontend.min.css" "$NHSUK/nhsuk-frontend.min.css"

# The stylesheet loads the Frutiger web font from assets.nhs.uk and its icons from the site root (/assets/...).
# Drop the @font-face rules (the font stack already falls back to Arial) and make the icon URLs relative to
# the stylesheet, so they resolve under /static/vendor/nhsuk/. Source-map comments are removed because the
# maps are not shipped (a browser with devtools open would request them and log 404s).
"$PYTHON" - "$NHSUK/nhsuk-frontend.min.css" "$NHSUK/nhsuk-frontend.min.js" <<'PY'
import re
import sys

css_path, js_path = sys.argv[1], sys.argv[2]
css = open(css_path, encoding="utf-8").read()
css, n_fonts = re.subn(r"@font-face\{[^}]*\}", "", css)
css = css.replace("url(/assets/", "url(assets/")
css = re.sub(r"/\*# sourceMappingURL=[^*]*\*/", "", css)
if n_fonts == 0:
    sys.exit("expected @font-face rules in nhsuk-frontend.min.css: has the upstream build changed?")
open(css_path, "w", encoding="utf-8").write(css)

js = open(js_path, encoding="utf-8").read()
js = re.sub(r"//# sourceMappingURL=\S*\s*$", "", js)
open(js_path, "w", encoding="utf-8").write(js)

for path, text in ((css_path, css), (js_path, js)):
    remote = re.findall(r"url\(\s*['\"]?(?:https?:)?//[^)]*\)|@import[^;]*;", text)
    if remote:
        sys.exit(f"{path} still loads from outside the app: {remote[:3]}")
PY

# The npm tarball carries no LICENSE file; package.json declares MIT and the upstream repository's LICENSE
# reads as below. Keep it beside the files it covers.
cat > "$NHSUK/LICENSE" <<'LICENCE'
MIT License

Copyright (c) 2019 NHS.UK

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENCE
NHSUK_LICENCE="$(cd "$WORK/package" && node -p 'require("./package.json").license')"

# ---------------------------------------------------------------- Vega, Vega-Lite, vega-embed (PyPI vl-convert)
echo "vl-convert-python $VLC_VERSION"
"$PYTHON" -m venv "$WORK/vlc"
"$WORK/vlc/bin/pip" install --quiet --disable-pip-version-check "vl-convert-python==$VLC_VERSION"
VEGA="$VENDOR/vega"
rm -rf "$VEGA"
mkdir -p "$VEGA"
"$WORK/vlc/bin/python" - "$VEGA" <<'PY'
import json
import re
import sys

import vl_convert

out = sys.argv[1]
bundle = vl_convert.javascript_bundle()
# The Vega-Lite build inside the bundle carries its exact version as a string constant.
vl_exact = re.search(r'="(6\.\d+\.\d+)";function \w+\(e\)\{return \w+\(e,', bundle)
versions = {
    "vl_convert": vl_convert.__version__ if hasattr(vl_convert, "__version__") else None,
    "vega": vl_convert.get_vega_version(),
    "vega_lite": vl_exact.group(1) if vl_exact else vl_convert.get_vegalite_versions()[-1],
    "vega_embed": vl_convert.get_vega_embed_version(),
    "vega_themes": vl_convert.get_vega_themes_version(),
}
with open(f"{out}/vega-bundle.js", "w", encoding="utf-8") as fh:
    fh.write(bundle)
with open(f"{out}/versions.json", "w", encoding="utf-8") as fh:
    json.dump(versions, fh, indent=2)
    fh.write("\n")
# A remote URL is fine inside a string the runtime never requests (the $schema, the editor link);
# a script/stylesheet import or a fetch of a fixed remote URL would not be. Fail on the latter.
for pattern in (r"import\s*\(\s*['\"]https?:", r"importScripts\(\s*['\"]https?:", r"fetch\(\s*['\"]https?:"):
    if re.search(pattern, bundle):
        sys.exit(f"vega-bundle.js loads from outside the app ({pattern})")
PY
cp "$WORK"/vlc/lib/python3*/site-packages/vl_convert_python-*.dist-info/licenses/LICENSE "$VEGA/LICENSE.vl-convert"
for pkg in "${VEGA_LICENCE_PACKAGES[@]}"; do
    mkdir -p "$WORK/lic/$pkg"
    (cd "$WORK/lic/$pkg" && npm pack --silent "$pkg@$(node -p "require('$VEGA/versions.json')['${pkg//-/_}']")" >/dev/null \
        && tar xzf ./*.tgz)
    cp "$WORK/lic/$pkg/package/LICENSE" "$VEGA/LICENSE.$pkg"
done

# ---------------------------------------------------------------- SOURCES.md
VERSIONS_JSON="$VEGA/versions.json"
"$PYTHON" - "$VENDOR" "$NHSUK_VERSION" "$NHSUK_LICENCE" "$VLC_VERSION" "$VERSIONS_JSON" <<'PY'
import json
import os
import sys

vendor, nhsuk_version, nhsuk_licence, vlc_version, versions_json = sys.argv[1:]
v = json.load(open(versions_json, encoding="utf-8"))


def size(rel: str) -> str:
    total = 0
    for base, _dirs, files in os.walk(os.path.join(vendor, rel)):
        total += sum(os.path.getsize(os.path.join(base, f)) for f in files)
    return f"{total / 1024:.0f} KiB"


text = f"""# Vendored front-end assets

Everything in this folder is served by the app itself under `/static/vendor/`; no page loads anything from
the internet. Regenerate with `scripts/vendor_assets.sh` (do not edit these files by hand).

| package | version | licence | files | size |
|---|---|---|---|---|
| nhsuk-frontend (npm) | {nhsuk_version} | {nhsuk_licence} (`nhsuk/LICENSE`) | `nhsuk/nhsuk-frontend.min.css`, `nhsuk/nhsuk-frontend.min.js`, `nhsuk/assets/` | {size("nhsuk")} |
| vl-convert-python (PyPI) | {vlc_version} | BSD-3-Clause (`vega/LICENSE.vl-convert`) | `vega/vega-bundle.js` (from `vl_convert.javascript_bundle()`) | {size("vega")} |
| vega (inside the bundle) | {v["vega"]} | BSD-3-Clause (`vega/LICENSE.vega`) | | |
| vega-lite (inside the bundle) | {v["vega_lite"]} | BSD-3-Clause (`vega/LICENSE.vega-lite`) | | |
| vega-embed (inside the bundle) | {v["vega_embed"]} | BSD-3-Clause (`vega/LICENSE.vega-embed`) | | |

The Vega bundle also contains the libraries those depend on, among them d3 modules (ISC), vega-tooltip and
vega-themes (BSD-3-Clause), fast-json-patch, json-stringify-pretty-compact and lodash.debounce (MIT), as bundled
by vl-convert.

## How they were produced

- **nhsuk-frontend**: `npm pack nhsuk-frontend@{nhsuk_version}`, then from `package/dist/nhsuk/`:
  `nhsuk-frontend.min.css`, `nhsuk-frontend.min.js` (an ES module: load it with `type="module"`),
  `assets/images/*` and `assets/manifest.json`. Changes made to the upstream files:
  - the `@font-face` rules for Frutiger (loaded from `assets.nhs.uk`) are removed; the font stack
    `"Frutiger W01", arial, sans-serif` then renders in Arial, as NHS.UK frontend does when the font is missing;
  - icon URLs `url(/assets/images/...)` are made relative (`url(assets/images/...)`) so they resolve beside the CSS;
  - `sourceMappingURL` comments are removed (the source maps are not shipped).
  The npm tarball has no licence file, so `nhsuk/LICENSE` holds the MIT licence from the upstream repository.
- **Vega**: `pip install vl-convert-python=={vlc_version}` in a throw-away venv, then
  `vl_convert.javascript_bundle()` written unchanged to `vega/vega-bundle.js`. It is one classic script that sets
  `window.vegaEmbed`. (In this vl-convert release `window.vega` and `window.vegaLite` are set to `null` by
  the bundler; Parity only uses `vegaEmbed`.) The `$schema` and editor URLs inside it are strings only and are
  never fetched. Licence files come from `npm pack` of the same versions of vega, vega-lite and vega-embed.
  `vega/versions.json` records the versions read from vl-convert.
- **Content-Security-Policy**: `static/parity.js` embeds charts with `{{ast: true}}`, which makes vega-embed use its
  bundled expression interpreter instead of `new Function`, so no `'unsafe-eval'` is needed (without it Chromium
  refuses with an EvalError under `script-src 'self'`). It loads `vega/vega-bundle.js` only on pages that have
  charts. `tests/test_static_assets.py` checks all of this in Chromium: the charts render under the app's policy
  with every request that is not to 127.0.0.1 aborted, and none is attempted.
"""
with open(os.path.join(vendor, "SOURCES.md"), "w", encoding="utf-8") as fh:
    fh.write(text)
PY
echo "done: $VENDOR"
du -sh "$VENDOR"
