// Parity's page behaviour. Loaded as an ES module (<script type="module">) from base.html. It imports
// NHS.UK frontend's JavaScript and, only on pages that have charts, loads the vendored Vega bundle (880 KiB)
// from beside itself (unless the page already included it).
//
// The app's Content-Security-Policy is `script-src 'self'`: no inline scripts and no eval. Chart specs
// therefore travel as inert JSON (<script type="application/json">) and are drawn here, and Vega runs with
// its expression interpreter (`ast: true`) instead of compiling expressions with `new Function`.

import { initAll } from './vendor/nhsuk/nhsuk-frontend.min.js'

// NHS.UK frontend only enhances components on pages that say the browser supports it; its own template
// sets these classes with an inline script, which the CSP forbids, so set them here.
document.body.classList.add('js-enabled', 'nhsuk-frontend-supported')

const EMBED_OPTIONS = {
  actions: false,
  renderer: 'svg',
  // Parse expressions to an AST and interpret them: works under a CSP without 'unsafe-eval'.
  ast: true
}

const VEGA_BUNDLE = new URL('./vendor/vega/vega-bundle.js', import.meta.url).href

/** Load the Vega bundle (a classic script that sets window.vegaEmbed) once. */
function loadVega () {
  if (typeof window.vegaEmbed === 'function') return Promise.resolve()
  return new Promise((resolve) => {
    const script = document.createElement('script')
    script.src = VEGA_BUNDLE
    // Resolve on failure too: each chart then shows its fallback message.
    script.onload = script.onerror = () => resolve()
    document.head.appendChild(script)
  })
}

/** Draw every chart whose spec is on the page; mark each target with data-rendered when done. */
async function renderCharts () {
  const specs = document.querySelectorAll('script[type="application/json"].parity-chart-spec')
  if (specs.length === 0) return
  await loadVega()
  const jobs = Array.from(specs, async (el) => {
    const target = document.getElementById(el.dataset.target)
    if (!target) {
      console.warn('parity: no chart target #' + el.dataset.target)
      return
    }
    if (typeof window.vegaEmbed !== 'function') {
      showChartFallback(target, 'Charts need the Vega script, which did not load.')
      return
    }
    try {
      const spec = JSON.parse(el.textContent)
      await window.vegaEmbed(target, spec, EMBED_OPTIONS)
      target.dataset.rendered = 'true'
    } catch (err) {
      console.error('parity: chart #' + target.id + ' could not be drawn', err)
      showChartFallback(target, 'This chart could not be drawn. The figures are in the table.')
    }
  })
  await Promise.all(jobs)
}

/** Replace a chart target's content with a short message (the page's tables still carry the data). */
function showChartFallback (target, message) {
  target.dataset.rendered = 'error'
  const p = document.createElement('p')
  p.className = 'nhsuk-body-s parity-chart__fallback'
  p.textContent = message
  target.replaceChildren(p)
}

/** <select data-autosubmit> submits its form when changed. The form keeps its visible submit button, for
 * people without JavaScript and for anyone who prefers to choose first and then confirm. */
function wireAutosubmit (root = document) {
  for (const select of root.querySelectorAll('select[data-autosubmit]')) {
    const form = select.form
    if (!form || select.dataset.autosubmitWired) continue
    select.dataset.autosubmitWired = 'true'
    select.addEventListener('change', () => {
      if (typeof form.requestSubmit === 'function') form.requestSubmit()
      else form.submit()
    })
  }
}

const FILL_RETRY_MS = 1000

/** A "Computing figures …" page (data-parity-computing) asks for the same address again until the figures
 * are ready (the server holds each such request a few seconds), then puts them in place of this page's
 * content: no reload, so nothing the person did on the page is lost. Its link is the no-JavaScript way. */
async function fillComputing () {
  const holder = document.querySelector('[data-parity-computing]')
  if (!holder) return
  const url = holder.dataset.fillUrl
  for (;;) {
    let response
    try {
      response = await fetch(url, { headers: { 'X-Parity-Fill': '1' }, credentials: 'same-origin' })
    } catch (err) {
      await new Promise((resolve) => setTimeout(resolve, FILL_RETRY_MS))
      continue
    }
    if (!response.ok) return // the link still works; the page it leads to explains the error
    const doc = new DOMParser().parseFromString(await response.text(), 'text/html')
    const fresh = doc.querySelector('main')
    if (!fresh || doc.querySelector('[data-parity-computing]')) {
      await new Promise((resolve) => setTimeout(resolve, FILL_RETRY_MS))
      continue
    }
    const main = document.querySelector('main')
    const nodes = Array.from(fresh.childNodes) // a snapshot: adopting a node takes it out of the live list
    main.replaceChildren(...nodes.map((node) => document.adoptNode(node)))
    document.title = doc.title
    main.dataset.filled = 'true'
    wireAutosubmit(main)
    renderCharts()
    return
  }
}

function start () {
  try {
    initAll()
  } catch (err) {
    // A component that fails to enhance still works as plain HTML; keep going with the rest.
    console.error('parity: NHS.UK frontend did not initialise', err)
  }
  wireAutosubmit()
  renderCharts()
  fillComputing()
}

// Module scripts run before DOMContentLoaded, but be safe if this is ever loaded late.
if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start)
} else {
  start()
}
