import { useState } from 'react';
import { DocumentProvider, useDocument, useMutate, useQuery, useStatus } from '@sqlsync-go/client/react';

// The coordinator: ?sync=<url> (the test passes it), else VITE_SQLSYNC_URL
// at build time, else `make run`'s address.
const url =
  new URLSearchParams(location.search).get('sync') ?? import.meta.env.VITE_SQLSYNC_URL ?? 'http://127.0.0.1:8080';

export default function App() {
  const { doc, error } = useDocument({ url, docId: 'example-groceries' });
  if (error) return <p role="alert">Could not open the list: {error.message}</p>;
  if (!doc) return <p>Opening…</p>;
  return (
    <DocumentProvider doc={doc}>
      <Groceries />
    </DocumentProvider>
  );
}

function Groceries() {
  const { rows, loading } = useQuery<{ id: string; title: string }>('SELECT id, title FROM items ORDER BY title');
  const mutate = useMutate();
  const status = useStatus();
  const [title, setTitle] = useState('');
  return (
    <main>
      <h1>Groceries</h1>
      <p>Sync: {status?.state ?? '…'}</p>
      <p>
        {status?.queueOnly
          ? 'Mutator: none here, changes show once the coordinator has applied them'
          : `Mutator: ${status?.mutator?.kind ?? '…'}${status?.mutator?.hash ? ` ${status.mutator.hash.slice(0, 12)}` : ''} from the ${status?.mutator?.source ?? '…'}`}
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          if (!title.trim()) return;
          void mutate('add', { id: crypto.randomUUID(), title: title.trim() });
          setTitle('');
        }}
      >
        <input aria-label="New item" value={title} onChange={(e) => setTitle(e.target.value)} />
        <button type="submit">Add</button>
      </form>
      {loading ? <p>Loading…</p> : null}
      <ul aria-label="Items">
        {rows?.map((r) => (
          <li key={r.id}>{r.title}</li>
        ))}
      </ul>
    </main>
  );
}
