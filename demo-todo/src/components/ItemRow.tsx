import { useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { deleteItem, moveItem, renameItem, toggleItem, type Item, type SqlsyncDocument } from '../todo';
import { useReport } from '../toasts';
import { InlineEdit } from './InlineEdit';

interface Props {
  doc: SqlsyncDocument;
  items: Item[];
  index: number;
}

/** One item: done checkbox, title, and its rename, move and delete buttons. */
export function ItemRow({ doc, items, index }: Props) {
  const item = items[index];
  const report = useReport();
  const [editing, setEditing] = useState(false);
  const row = useRef<HTMLLIElement>(null);
  const editButton = useRef<HTMLButtonElement>(null);
  // The control that had focus when the item moved: moving the row in the
  // page can take focus away, so it is given back once the row is in place.
  const focusAfterMove = useRef<HTMLElement | null>(null);

  useEffect(() => {
    const el = focusAfterMove.current;
    focusAfterMove.current = null;
    if (!el) return;
    if (el.matches(':disabled')) row.current?.querySelector<HTMLElement>('input')?.focus();
    else el.focus();
  }, [index]);

  const move = (by: -1 | 1) => {
    focusAfterMove.current = document.activeElement as HTMLElement | null;
    moveItem(doc, items, index, by).catch(report);
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (!e.altKey || (e.key !== 'ArrowUp' && e.key !== 'ArrowDown')) return;
    e.preventDefault();
    move(e.key === 'ArrowUp' ? -1 : 1);
  };
  const doneEditing = () => {
    setEditing(false);
    setTimeout(() => editButton.current?.focus());
  };

  const checkboxId = `done-${item.id}`;
  const name = `“${item.title}”`;
  return (
    <li ref={row} className={item.done ? 'item done' : 'item'} onKeyDown={onKeyDown}>
      {editing ? (
        <InlineEdit
          label={`New title for ${name}`}
          initial={item.title}
          onSave={(title) => renameItem(doc, item.id, title).catch(report)}
          onDone={doneEditing}
        />
      ) : (
        <>
          <input
            type="checkbox"
            id={checkboxId}
            checked={item.done === 1}
            onChange={() => toggleItem(doc, item.id).catch(report)}
          />
          <label htmlFor={checkboxId} className="title">
            {item.title}
          </label>
          <div className="actions">
            <button type="button" ref={editButton} className="quiet" aria-label={`Rename ${name}`} onClick={() => setEditing(true)}>
              Edit
            </button>
            <button
              type="button"
              className="icon"
              aria-label={`Move ${name} up`}
              aria-describedby="move-hint"
              disabled={index === 0}
              onClick={() => move(-1)}
            >
              ↑
            </button>
            <button
              type="button"
              className="icon"
              aria-label={`Move ${name} down`}
              aria-describedby="move-hint"
              disabled={index === items.length - 1}
              onClick={() => move(1)}
            >
              ↓
            </button>
            <button
              type="button"
              className="quiet danger"
              aria-label={`Delete ${name}`}
              onClick={() => deleteItem(doc, item.id).catch(report)}
            >
              Delete
            </button>
          </div>
        </>
      )}
    </li>
  );
}
