import { useState } from 'react';
import { forgetList, recentLists } from '../recentLists';
import { listHref, newListId } from '../route';

/** The lists this browser has opened, and a button for a new one. */
export function StartPage() {
  const [lists, setLists] = useState(recentLists);
  const forget = (id: string) => {
    forgetList(id);
    setLists(recentLists());
  };
  return (
    <main className="page narrow">
      <header className="start-header">
        <h1>sqlsync todo</h1>
        <p className="lead">
          Shared todo lists that work offline. Each list is a SQLite database, kept both in your browser and on the
          server; share a list's link to edit it together.
        </p>
      </header>
      <button type="button" className="primary" onClick={() => (location.hash = listHref(newListId()))}>
        New list
      </button>
      <section aria-labelledby="recent-heading" className="card">
        <h2 id="recent-heading">Lists you have opened</h2>
        {lists.length === 0 ? (
          <p className="muted">None yet. Create one, or open a link someone shared with you.</p>
        ) : (
          <ul className="recent">
            {lists.map((l) => (
              <li key={l.id}>
                <a href={listHref(l.id)}>{l.title || 'Untitled list'}</a>
                <span className="muted list-id">{l.id}</span>
                <button
                  type="button"
                  className="quiet"
                  aria-label={`Forget “${l.title || l.id}” in this browser`}
                  onClick={() => forget(l.id)}
                >
                  Forget
                </button>
              </li>
            ))}
          </ul>
        )}
      </section>
    </main>
  );
}
