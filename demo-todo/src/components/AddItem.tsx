import { useState, type FormEvent } from 'react';
import { addItem, type SqlsyncDocument } from '../todo';
import { useReport } from '../toasts';

/** The form that adds an item at the end of the list. */
export function AddItem({ doc }: { doc: SqlsyncDocument }) {
  const [title, setTitle] = useState('');
  const report = useReport();
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const t = title.trim();
    if (!t) return;
    setTitle('');
    addItem(doc, t).catch(report);
  };
  return (
    <form className="add-item" onSubmit={submit}>
      <label htmlFor="new-item">New item</label>
      <div className="row">
        <input
          id="new-item"
          value={title}
          onChange={(e) => setTitle(e.target.value)}
          placeholder="What needs doing?"
          autoComplete="off"
          maxLength={200}
        />
        <button type="submit" className="primary">
          Add
        </button>
      </div>
    </form>
  );
}
