// The lists this browser has opened, newest first, kept in localStorage for
// the start page. The lists themselves live in sqlsync documents.

export interface RecentList {
  id: string;
  title: string;
  openedAt: number;
}

const KEY = 'sqlsync-demo-todo:lists';

export function recentLists(): RecentList[] {
  try {
    const lists = JSON.parse(localStorage.getItem(KEY) ?? '[]');
    return Array.isArray(lists) ? lists : [];
  } catch {
    return [];
  }
}

function save(lists: RecentList[]): void {
  localStorage.setItem(KEY, JSON.stringify(lists));
}

/** Records that list id was opened, with its title if known. */
export function rememberList(id: string, title?: string): void {
  const lists = recentLists();
  const old = lists.find((l) => l.id === id);
  save([{ id, title: title ?? old?.title ?? '', openedAt: Date.now() }, ...lists.filter((l) => l.id !== id)]);
}

/** Updates a list's title without moving it to the top. */
export function renameRememberedList(id: string, title: string): void {
  save(recentLists().map((l) => (l.id === id ? { ...l, title } : l)));
}

export function forgetList(id: string): void {
  save(recentLists().filter((l) => l.id !== id));
}
