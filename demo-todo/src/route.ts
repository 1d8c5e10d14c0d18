// The URL names the page: #/ is the start page, #/list/<id> a list. The
// list's id is its document's id, so the link is all it takes to share it.
import { useEffect, useState } from 'react';

export type Route = { page: 'start' } | { page: 'list'; listId: string } | { page: 'not-found' };

/** Document ids the coordinator accepts. */
const LIST_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function parseRoute(hash: string): Route {
  const path = hash.replace(/^#/, '');
  if (path === '' || path === '/') return { page: 'start' };
  const m = /^\/list\/([^/]+)$/.exec(path);
  if (m && LIST_ID.test(m[1])) return { page: 'list', listId: m[1] };
  return { page: 'not-found' };
}

/** The current route, following the URL's hash. */
export function useRoute(): Route {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const onChange = () => setHash(location.hash);
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return parseRoute(hash);
}

export const listHref = (listId: string) => `#/list/${listId}`;

/** The full link to share a list. */
export const listUrl = (listId: string) => new URL(listHref(listId), location.href).href;

/** A new random list id: 12 letters and digits. */
export function newListId(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => alphabet[b % alphabet.length]).join('');
}
