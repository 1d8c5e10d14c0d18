import { asViewer, initials, type OtherViewer } from '../presence';

/** The people looking at the list: this tab, then the others (this browser's other tabs marked). */
export function Viewers({ me, others }: { me: { name: string; color: string }; others: OtherViewer[] }) {
  const viewers = others.flatMap((p) => {
    const v = asViewer(p);
    return v ? [{ id: p.id, ...v, local: p.local, readOnly: p.readOnly }] : [];
  });
  const label = viewers.length === 0 ? 'Only you are viewing this list' : `Viewing this list: you and ${viewers.length} other${viewers.length === 1 ? '' : 's'}`;
  return (
    <ul className="viewers" aria-label={label} title={label}>
      <li className="viewer me" data-name={me.name}>
        <span className="avatar" style={{ background: me.color }} aria-hidden="true">
          {initials(me.name)}
        </span>
        <span className="visually-hidden">{me.name} (you)</span>
      </li>
      {viewers.map((v) => {
        const who = `${v.name}${v.local ? ' (your other tab)' : ''}${v.readOnly ? ' (viewer)' : ''}`;
        return (
          <li key={v.id} className="viewer" data-name={v.name} title={who}>
            <span className="avatar" style={{ background: v.color }} aria-hidden="true">
              {initials(v.name)}
            </span>
            <span className="visually-hidden">{who}</span>
          </li>
        );
      })}
    </ul>
  );
}
