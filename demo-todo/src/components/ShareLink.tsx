import { useState } from 'react';
import { listUrl } from '../route';

/** The list's link, to open it in another browser or send it to someone. */
export function ShareLink({ listId }: { listId: string }) {
  const url = listUrl(listId);
  const [copied, setCopied] = useState(false);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(url);
      setCopied(true);
      setTimeout(() => setCopied(false), 2000);
    } catch {
      (document.getElementById('share-link') as HTMLInputElement | null)?.select();
    }
  };
  return (
    <div className="share">
      <label htmlFor="share-link">Share link</label>
      <div className="row">
        <input id="share-link" readOnly value={url} onFocus={(e) => e.target.select()} />
        <button type="button" onClick={copy}>
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}
