/**
 * A small strftime(3) for log file names and time stamps (logging/file), in local time.
 * Supports %a %A %b %B %C %d %D %e %F %H %I %j %k %l %m %M %n %p %R %s %S %t %T %u %y %Y %z %%;
 * any other conversion is copied unchanged, so a pattern never throws.
 */
const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'] as const
const MONTHS = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
] as const

const pad = (n: number, width = 2, fill = '0') => String(n).padStart(width, fill)

function dayOfYear(d: Date): number {
  const start = new Date(d.getFullYear(), 0, 1)
  return Math.round((new Date(d.getFullYear(), d.getMonth(), d.getDate()).getTime() - start.getTime()) / 86_400_000) + 1
}

function conversion(c: string, d: Date): string | undefined {
  const h = d.getHours()
  switch (c) {
    case 'a':
      return DAYS[d.getDay()]?.slice(0, 3)
    case 'A':
      return DAYS[d.getDay()]
    case 'b':
    case 'h':
      return MONTHS[d.getMonth()]?.slice(0, 3)
    case 'B':
      return MONTHS[d.getMonth()]
    case 'C':
      return pad(Math.floor(d.getFullYear() / 100))
    case 'd':
      return pad(d.getDate())
    case 'D':
      return `${pad(d.getMonth() + 1)}/${pad(d.getDate())}/${pad(d.getFullYear() % 100)}`
    case 'e':
      return pad(d.getDate(), 2, ' ')
    case 'F':
      return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
    case 'H':
      return pad(h)
    case 'I':
      return pad(h % 12 === 0 ? 12 : h % 12)
    case 'j':
      return pad(dayOfYear(d), 3)
    case 'k':
      return pad(h, 2, ' ')
    case 'l':
      return pad(h % 12 === 0 ? 12 : h % 12, 2, ' ')
    case 'm':
      return pad(d.getMonth() + 1)
    case 'M':
      return pad(d.getMinutes())
    case 'n':
      return '\n'
    case 'p':
      return h < 12 ? 'AM' : 'PM'
    case 'R':
      return `${pad(h)}:${pad(d.getMinutes())}`
    case 's':
      return String(Math.floor(d.getTime() / 1000))
    case 'S':
      return pad(d.getSeconds())
    case 't':
      return '\t'
    case 'T':
      return `${pad(h)}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
    case 'u':
      return String(d.getDay() === 0 ? 7 : d.getDay())
    case 'y':
      return pad(d.getFullYear() % 100)
    case 'Y':
      return String(d.getFullYear())
    case 'z': {
      const off = -d.getTimezoneOffset()
      const abs = Math.abs(off)
      return `${off < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}${pad(abs % 60)}`
    }
    case '%':
      return '%'
    default:
      return undefined
  }
}

/** @example strftime('%Y-%m-%d %T', new Date(2026, 10, 25, 16, 43, 40)) // '2026-11-25 16:43:40' */
export function strftime(format: string, date: Date): string {
  return format.replace(/%(.)/gs, (whole, c: string) => conversion(c, date) ?? whole)
}
