import { memo, useEffect, useRef, useState, type KeyboardEvent } from 'react';
import { deleteItem, renameItem, toggleItem, type Item, type SqlsyncDocument } from '../todo';
import { useReport } from '../toasts';
import { InlineEdit } from './InlineEdit';

/** Someone else editing an item's title. */
export interface Editor {
  id: string;
  name: string;
  color: string;
  /** In another tab of this browser. */
  local: boolean;
}

interface Props {
  doc: SqlsyncDocument;
  item: Item;
  index: number;
  last: boolean;
  /** Moves the item at index by one place, against the list as it is now. */
  move: (index: number, by: -1 | 1) => Promise<void>;
  /** The others editing this item's title. */
  editors: Editor[];
  /** Called as this item's title editor takes or loses focus. */
  onEditing: (id: string, focused: boolean) => void;
}

const sameEditors = (a: Editor[], b: Editor[]) =>
  a.length === b.length && a.every((e, i) => e.id === b[i].id && e.name === b[i].name && e.color === b[i].color);

/**
 * One item: done checkbox, title, and its rename, move and delete buttons.
 * Memoised on what it shows, so adding an item renders one row, not all.
 */
export const ItemRow = memo(ItemRowView, (a, b) =>
  a.doc === b.doc &&
  a.index === b.index &&
  a.last === b.last &&
  a.move === b.move &&
  a.onEditing === b.onEditing &&
  sameEditors(a.editors, b.editors) &&
  a.item.id === b.item.id &&
  a.item.title === b.item.title &&
  a.item.done === b.item.done &&
  a.item.position === b.item.position,
);

function ItemRowView({ doc, item, index, last, move: moveBy, editors, onEditing }: Props) {
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
    moveBy(index, by).catch(report);
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
  const classes = ['item', item.done ? 'done' : '', editors.length > 0 ? 'being-edited' : ''].filter(Boolean).join(' ');
  return (
    <li ref={row} className={classes} onKeyDown={onKeyDown} style={editors.length > 0 ? { borderLeftColor: editors[0].color } : undefined}>
      {editing ? (
        <InlineEdit
          label={`New title for ${name}`}
          initial={item.title}
          onSave={(title) => renameItem(doc, item.id, title).catch(report)}
          onDone={doneEditing}
          onFocusChange={(focused) => onEditing(item.id, focused)}
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
          {editors.map((e) => (
            <span key={e.id} className="editing-by" style={{ color: e.color, borderColor: e.color }}>
              <span aria-hidden="true">✎ </span>
              {e.name}
              {e.local ? ' (your other tab)' : ''} is editing
            </span>
          ))}
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
              disabled={last}
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
