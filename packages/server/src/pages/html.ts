/** HTML that is already safe to send: the output of `html`, never user input. */
export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value
  }
}

const entities: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }

export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => entities[c]!)

type Value = SafeHtml | string | number | null | undefined | false | readonly Value[]

function render(value: Value): string {
  if (value === null || value === undefined || value === false) return ''
  if (value instanceof SafeHtml) return value.value
  if (Array.isArray(value)) return value.map(render).join('')
  return escapeHtml(String(value))
}

/** A template tag that escapes every interpolated value unless it is itself `html`. */
export function html(strings: TemplateStringsArray, ...values: Value[]): SafeHtml {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!
  return new SafeHtml(out)
}

/**
 * A moment as people read it: UTC on the page, and in the reader's own zone and locale once pages.js
 * runs (the server knows neither). `date` for a day, `time` for a day and time.
 */
export function when(ms: number, style: 'date' | 'time' = 'time'): SafeHtml {
  const iso = new Date(ms).toISOString()
  const shown = style === 'date' ? iso.slice(0, 10) : `${iso.slice(0, 19).replace('T', ' ')} UTC`
  return html`<time datetime="${iso}" data-local="${style}">${shown}</time>`
}
