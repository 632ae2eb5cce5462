// Dues in words. A due's date is a date in its own time zone, so "today" is read there too:
// a task due on the 5th in Tokyo is due today for as long as it is the 5th in Tokyo.

const DAY = 86400000;
const WORDS = { 0: "Today", 1: "Tomorrow", "-1": "Yesterday" };
const PARTS = {
  year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23",
};

export function browserZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone;
}

const formats = new Map();

// A zone this browser does not know reads as UTC rather than breaking the list.
function formatIn(zone) {
  if (!formats.has(zone)) {
    try {
      formats.set(zone, new Intl.DateTimeFormat("en-GB", { ...PARTS, timeZone: zone }));
    } catch {
      formats.set(zone, formatIn("UTC"));
    }
  }
  return formats.get(zone);
}

// The wall clock in a zone, as "YYYY-MM-DDTHH:MM:SS", which compares as text.
export function wallClock(zone, now = new Date()) {
  const part = Object.fromEntries(formatIn(zone).formatToParts(now).map((p) => [p.type, p.value]));
  return `${part.year}-${part.month}-${part.day}T${part.hour}:${part.minute}:${part.second}`;
}

function dayNumber(date) {
  return Date.parse(`${date}T00:00:00Z`) / DAY;
}

// Open and past its due: a timed due at its instant, an all-day one once its date is over.
// A due typed here and not yet answered has no `at`: its wall time stands in for it.
export function isOverdue(task, now = new Date()) {
  const due = task.due;
  if (!due || task.completed) return false;
  if (due.at) return Date.parse(due.at) < now.getTime();
  const wall = wallClock(due.timezone, now);
  return due.time ? `${due.date}T${due.time}` < wall : due.date < wall.slice(0, 10);
}

// "Today", "Tomorrow", "Yesterday" or a short date (with the year when it is not this one),
// then the time of a timed due, then its zone when it is not the browser's.
export function dueText(due, now = new Date()) {
  const today = wallClock(due.timezone, now).slice(0, 10);
  const offset = dayNumber(due.date) - dayNumber(today);
  let text = WORDS[offset];
  if (!text) {
    const options = { timeZone: "UTC", weekday: "short", day: "numeric", month: "short" };
    if (due.date.slice(0, 4) !== today.slice(0, 4)) options.year = "numeric";
    text = new Intl.DateTimeFormat(undefined, options).format(new Date(`${due.date}T00:00Z`));
  }
  if (due.time) text += ` ${due.time.slice(0, 5)}`;
  if (due.timezone !== browserZone()) text += ` (${due.timezone})`;
  return text;
}
