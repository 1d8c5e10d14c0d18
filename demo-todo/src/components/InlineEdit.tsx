import { useId, useState, type FormEvent, type KeyboardEvent } from 'react';

interface Props {
  /** The input's label, for screen readers (the form replaces what it edits). */
  label: string;
  initial: string;
  onSave: (value: string) => void;
  /** Called after saving or cancelling (Escape). */
  onDone: () => void;
}

/** A one-line form that edits a title: Enter saves, Escape cancels. */
export function InlineEdit({ label, initial, onSave, onDone }: Props) {
  const id = useId();
  const [value, setValue] = useState(initial);
  const submit = (e: FormEvent) => {
    e.preventDefault();
    const v = value.trim();
    if (v && v !== initial) onSave(v);
    onDone();
  };
  const onKeyDown = (e: KeyboardEvent) => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onDone();
    }
  };
  return (
    <form className="inline-edit" onSubmit={submit}>
      <label htmlFor={id} className="visually-hidden">
        {label}
      </label>
      <input
        id={id}
        value={value}
        onChange={(e) => setValue(e.target.value)}
        onKeyDown={onKeyDown}
        autoFocus
        required
        maxLength={200}
      />
      <button type="submit">Save</button>
      <button type="button" className="quiet" onClick={onDone}>
        Cancel
      </button>
    </form>
  );
}
