// The status page: renders each `status` event of /events. Every value a client sent (HELO,
// addresses, user names, reply texts) goes into the DOM with textContent, never as markup, and
// control and bidirectional-override characters are shown as \xNN or \u{NNNN}, so a HELO holding
// <script> or a terminal escape reads as the text it is. Render cost is bounded by the server:
// one page of sessions, one ring of verdicts, one row per plugin and hook.

const $ = (id) => document.getElementById(id)
const state = { order: 'oldest', offset: 0, pageSize: 50, source: undefined, last: undefined }

/** Control characters (C0, DEL, C1) and bidi overrides become visible escapes. */
function visible(text) {
  if (text === undefined || text === null) return '-'
  const s = String(text)
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    const n = c.codePointAt(0)
    return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`
  })
}

function cell(text, label, className) {
  const td = document.createElement('td')
  td.textContent = visible(text)
  td.setAttribute('data-label', label)
  if (className !== undefined) td.className = className
  return td
}

function fillTable(id, rows, toCells) {
  const head = [...$(id).querySelectorAll('thead th')].map((th) => th.textContent)
  const body = $(id).querySelector('tbody')
  const fresh = document.createElement('tbody')
  for (const row of rows) {
    const tr = document.createElement('tr')
    const { cells, className } = toCells(row)
    cells.forEach(([text, cls], i) => {
      tr.appendChild(cell(text, head[i] ?? '', cls))
    })
    if (className !== undefined) tr.className = className
    fresh.appendChild(tr)
  }
  body.replaceWith(fresh)
}

function age(ms) {
  const s = Math.max(0, Math.round(ms / 1000))
  if (s < 120) return `${s}s`
  if (s < 7200) return `${Math.round(s / 60)}m`
  if (s < 172800) return `${Math.round(s / 3600)}h`
  return `${Math.round(s / 86400)}d`
}

const outcomes = (o) =>
  Object.entries(o)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ')

function render(v) {
  state.last = v
  const health = $('health')
  health.textContent = v.health.state
  health.className = `badge ${v.health.state}`
  const server = v.server
  const cfg =
    server.config === undefined
      ? 'no configuration'
      : `configuration ${server.config.generation} (${server.config.digest})`
  $('summary').textContent =
    `${server.mode === 'workers' ? `${v.workers.length} workers, primary` : 'single process'} pid ${server.pid}, ` +
    `version ${server.version}, up ${age(v.at - server.startedAt)}, ${cfg}; ` +
    `${v.health.open} open${v.health.capacity > 0 ? ` of ${v.health.capacity}` : ''}; updated ${new Date(v.at).toLocaleTimeString()}`
  $('session-count').textContent = `(${v.sessions})`
  const phases = $('phases')
  phases.replaceChildren(
    ...Object.entries(v.byPhase).map(([phase, n]) => {
      const chip = document.createElement('span')
      chip.className = 'chip'
      chip.textContent = `${phase} ${n}`
      return chip
    }),
  )
  const first = v.list.length === 0 ? 0 : v.offset + 1
  $('range').textContent = `${first}–${v.offset + v.list.length} of ${v.sessions}`
  $('prev').disabled = v.offset === 0
  $('next').disabled = v.offset + v.list.length >= v.sessions
  fillTable('sessions', v.list, (s) => ({
    cells: [
      [`${s.ip}:${s.port}${s.host ? ` (${s.host})` : ''}`],
      [s.helo],
      [s.phase],
      [age(v.at - s.startedAt)],
      [s.tls ?? 'no'],
      [s.user],
      [s.from === undefined ? `${s.messages} accepted` : `<${s.from}> ${s.recipients} rcpt`],
      [s.worker],
    ],
  }))
  fillTable('verdicts', v.verdicts, (d) => ({
    className: d.accepted ? 'accepted' : 'refused',
    cells: [
      [new Date(d.at).toLocaleTimeString()],
      [d.ip],
      [d.helo],
      [d.command],
      [d.reply, 'reply'],
      [d.plugin ?? 'core'],
    ],
  }))
  fillTable('plugins', v.plugins, (p) => ({
    cells: [
      [p.plugin],
      [p.hook],
      [p.calls, 'num'],
      [p.meanMs.toFixed(2), 'num'],
      [p.p95Ms === undefined ? '> 30000' : String(p.p95Ms), 'num'],
      [outcomes(p.outcomes)],
    ],
  }))
  fillTable('queues', v.queues, (q) => ({
    cells: [[q.plugin], [outcomes(q.outcomes)], [q.meanMs.toFixed(2), 'num']],
  }))
  fillTable('workers', v.workers, (w) => ({
    cells: [
      [w.id === 0 ? 'single' : w.id],
      [w.pid],
      [w.ready ? (w.answered ? 'ready' : 'ready, late to answer') : 'starting'],
      [w.sessions, 'num'],
      [w.restarts, 'num'],
      [w.config],
    ],
  }))
}

function connect() {
  state.source?.close()
  const q = new URLSearchParams({ order: state.order, offset: String(state.offset) })
  const source = new EventSource(`events?${q}`)
  state.source = source
  source.addEventListener('status', (e) => {
    const v = JSON.parse(e.data)
    state.pageSize = v.pageSize
    render(v)
  })
  source.addEventListener('error', () => {
    const health = $('health')
    health.textContent = 'offline'
    health.className = 'badge offline'
  })
}

$('order').addEventListener('change', (e) => {
  state.order = e.target.value
  state.offset = 0
  connect()
})
$('prev').addEventListener('click', () => {
  state.offset = Math.max(0, state.offset - state.pageSize)
  connect()
})
$('next').addEventListener('click', () => {
  state.offset += state.pageSize
  connect()
})
connect()
