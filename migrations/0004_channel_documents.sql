-- §6.4 [1.2]: which documents belong to which channel, recorded by each document object when it
-- starts a life (so deleting a channel needs no scan). A document id with several `:` belongs to
-- every channel id its prefixes name. registered_at lets a delete keep a row re-registered after it.
CREATE TABLE IF NOT EXISTS channel_documents (
  channel_id     TEXT    NOT NULL,
  document_id    TEXT    NOT NULL,
  registered_at  INTEGER NOT NULL,
  PRIMARY KEY (channel_id, document_id)
);
CREATE INDEX IF NOT EXISTS channel_documents_by_document ON channel_documents (document_id);
