// Who is looking at a list: each tab publishes its viewer (a name and a
// colour, picked at random once and kept in localStorage, so this
// browser's tabs share them) and the item whose title it is editing,
// with sqlsync's presence (doc.presence, usePresence). Presence is never
// written to the list: it goes when the tab closes or goes offline.
import type { PresencePeer } from '@sqlsync-go/client';

/** What each tab publishes. */
export interface Viewer {
  name: string;
  color: string;
  /** The item whose title this tab is editing, if any. */
  editing: string | null;
}

/** Another tab's presence, as the list shows it. */
export type OtherViewer = PresencePeer<Viewer>;

const NAME_KEY = 'sqlsync-demo-todo:viewer';

const adjectives = ['Amber', 'Brave', 'Calm', 'Clever', 'Curious', 'Eager', 'Gentle', 'Happy', 'Jolly', 'Lucky', 'Merry', 'Quiet', 'Swift', 'Witty'];
const animals = ['Badger', 'Crane', 'Dolphin', 'Falcon', 'Fox', 'Hedgehog', 'Heron', 'Lynx', 'Otter', 'Owl', 'Panda', 'Robin', 'Seal', 'Wren'];
const colors = ['#c2410c', '#15803d', '#1d4ed8', '#7e22ce', '#be123c', '#0f766e', '#a16207', '#4338ca'];

const pick = <T,>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)];

/** This browser's viewer name and colour: made up on first use, then kept. */
export function me(): Omit<Viewer, 'editing'> {
  try {
    const kept = JSON.parse(localStorage.getItem(NAME_KEY) ?? 'null');
    if (kept && typeof kept.name === 'string' && typeof kept.color === 'string') return { name: kept.name, color: kept.color };
  } catch {
    // A bad value: make a new one.
  }
  const made = { name: `${pick(adjectives)} ${pick(animals)}`, color: pick(colors) };
  localStorage.setItem(NAME_KEY, JSON.stringify(made));
  return made;
}

/** A presence's state as a Viewer, or undefined if it is not one (another app's, or a bad peer's). */
export function asViewer(p: PresencePeer): Viewer | undefined {
  const s = p.state as Partial<Viewer> | null;
  if (!s || typeof s.name !== 'string' || typeof s.color !== 'string') return undefined;
  return { name: s.name.slice(0, 40), color: /^#[0-9a-f]{6}$/i.test(s.color) ? s.color : '#6b7280', editing: typeof s.editing === 'string' ? s.editing : null };
}

/** The initials an avatar shows. */
export function initials(name: string): string {
  return name
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 2)
    .map((w) => w[0]!.toUpperCase())
    .join('');
}
