// A list the API hands out a page at a time (GET jobs, GET workflows: `limit`, `cursor`, `next_cursor`), kept
// fresh by a Ticker: each tick reads the first page again, as long as what is shown so that rows a "More" added stay
// on screen; "More" reads the page after the last row shown.

import { api } from "./api.js";
import { $, Ticker } from "./dom.js";

const PAGE_SIZE = 20;
const MOST_ROWS = 500; // the API's largest `limit`: a refresh never asks for more

export class PagedList {
  /**
   * resource: the path and the answer's key ("jobs"); query(): the filters as [name, value] pairs; errorId: the
   * element that says why a read failed; render(): shows `items`; delay(items): ms until the next tick.
   */
  constructor({ resource, query, errorId, render, delay }) {
    Object.assign(this, { resource, query, errorId, render });
    this.items = [];
    this.next = null;
    this.append = false;
    this.ticker = new Ticker(() => this.load(), () => delay(this.items));
  }

  async load() {
    const append = this.append;
    this.append = false;
    const limit = append ? PAGE_SIZE : Math.min(MOST_ROWS, Math.max(PAGE_SIZE, this.items.length));
    const query = [["limit", String(limit)], ...this.query()];
    if (append && this.next) query.push(["cursor", this.next]);
    const seq = this.ticker.seq;
    try {
      const { data } = await api("GET", this.resource, { query });
      if (seq !== this.ticker.seq) return; // a newer read (a filter changed) or the view was left meanwhile
      this.items = append ? this.items.concat(data[this.resource]) : data[this.resource];
      this.next = data.next_cursor;
      $(this.errorId).textContent = "";
      this.render();
    } catch (exc) {
      if (seq === this.ticker.seq) $(this.errorId).textContent = `Could not load ${this.resource}: ${exc.message}`;
    }
  }

  /** From the first page again: the filters changed. */
  reset() {
    this.items = [];
    this.next = null;
    this.ticker.run();
  }

  more() {
    this.append = true;
    this.ticker.run();
  }

  /** The list's controls: filters that reset it (a typed one once typing pauses), Refresh and More. */
  wire({ form, changed = [], typed = [], refresh, more }) {
    $(form).addEventListener("submit", (event) => event.preventDefault());
    for (const id of changed) $(id).addEventListener("change", () => this.reset());
    let typing = null;
    for (const id of typed) {
      $(id).addEventListener("input", () => {
        clearTimeout(typing);
        typing = setTimeout(() => this.reset(), 300);
      });
    }
    $(refresh).addEventListener("click", () => this.ticker.run());
    $(more).addEventListener("click", () => this.more());
  }
}
