// Drawing a part of a tenant's graph with cytoscape.js (vendored, loaded as a classic
// script: window.cytoscape). Shared by the graph view and the query page.
//
// Nodes get a colour per _type and a shape per class; what changed in the last run gets
// a coloured ring. Nothing here fetches: callers hand in entities and relationships in
// either of the API's forms (flat J1 EntityJson, or query rows {id, entity, properties}).

/** Shapes by class (the first class of an entity that has one wins). */
const CLASS_SHAPES = [
  ['Account', 'star'],
  ['Organization', 'star'],
  ['User', 'ellipse'],
  ['Person', 'triangle'],
  ['Group', 'hexagon'],
  ['UserGroup', 'hexagon'],
  ['Application', 'round-rectangle'],
  ['Device', 'rectangle'],
  ['Host', 'rectangle'],
  ['Policy', 'diamond'],
  ['AccessPolicy', 'diamond'],
  ['Configuration', 'diamond'],
  ['Service', 'barrel'],
  ['Vendor', 'vee'],
];

/** Colours of the types the JumpCloud component emits; others get one from the palette. */
const TYPE_COLOURS = {
  jumpcloud_account: '#7b4fa0',
  jumpcloud_user: '#2f7ed8',
  jumpcloud_group: '#e39a17',
  jumpcloud_application: '#23a383',
  employee: '#d1495b',
};
const PALETTE = ['#8c564b', '#17becf', '#bcbd22', '#e377c2', '#7f7f7f', '#1f3d7a', '#9edae5', '#ff7f0e', '#98df8a', '#c5b0d5'];

export function colourOf(type) {
  if (TYPE_COLOURS[type]) return TYPE_COLOURS[type];
  let h = 0;
  for (const c of String(type)) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return PALETTE[h % PALETTE.length];
}

export function shapeOf(classes) {
  const list = Array.isArray(classes) ? classes : [classes];
  for (const [cls, shape] of CLASS_SHAPES) if (list.includes(cls)) return shape;
  return 'ellipse';
}

/** An entity in the flat J1 form, whichever form the API gave. */
export function flatEntity(row) {
  if (row && row.entity && typeof row.entity === 'object') return { ...row.properties, ...row.entity };
  return row;
}

export function labelOf(entity) {
  return String(entity.displayName || entity.name || entity.email || entity.username || entity._key);
}

/** A relationship as {key, type, cls, from, to}, from either API form. */
function flatRelationship(rel) {
  if (rel.fromVertexId !== undefined) {
    const r = rel.relationship || {};
    return { key: rel.id, type: r._type, cls: r._class, from: rel.fromVertexId, to: rel.toVertexId };
  }
  return { key: rel._key, type: rel._type, cls: rel._class, from: rel._fromEntityKey, to: rel._toEntityKey };
}

const STYLE = [
  {
    selector: 'node',
    style: {
      'background-color': 'data(colour)',
      shape: 'data(shape)',
      label: 'data(label)',
      width: 24,
      height: 24,
      'font-size': 10,
      color: '#1d2330',
      'text-valign': 'bottom',
      'text-margin-y': 3,
      'text-max-width': 110,
      'text-wrap': 'ellipsis',
      'min-zoomed-font-size': 7,
      // Where labels still cross, the one on top stays legible.
      'text-background-color': '#ffffff',
      'text-background-opacity': 0.75,
      'text-background-padding': 1,
      'border-width': 1,
      'border-color': '#ffffff',
    },
  },
  // Well-connected nodes (the account, busy groups) above their neighbours, label too.
  { selector: 'node[[degree >= 3]]', style: { 'z-index': 5 } },
  { selector: 'node.expanded', style: { 'border-width': 2, 'border-color': '#1d2330', 'border-style': 'double' } },
  { selector: 'node.created', style: { 'border-width': 5, 'border-color': '#1a9e3f' } },
  { selector: 'node.updated', style: { 'border-width': 5, 'border-color': '#f08c00' } },
  { selector: 'node.deleted', style: { 'border-width': 5, 'border-color': '#d62828', 'border-style': 'dashed', opacity: 0.7 } },
  { selector: 'node:selected', style: { 'overlay-color': '#1d2330', 'overlay-opacity': 0.18, 'overlay-padding': 6, 'font-weight': 'bold' } },
  { selector: 'node.match', style: { 'underlay-color': '#ffd43b', 'underlay-opacity': 0.8, 'underlay-padding': 7 } },
  {
    selector: 'edge',
    style: {
      width: 1.3,
      'line-color': '#aab3c0',
      'target-arrow-color': '#aab3c0',
      'target-arrow-shape': 'triangle',
      'arrow-scale': 0.8,
      'curve-style': 'bezier',
      label: 'data(cls)',
      'font-size': 8,
      color: '#6b7480',
      'min-zoomed-font-size': 11,
      'text-rotation': 'autorotate',
    },
  },
  { selector: 'edge.created', style: { 'line-color': '#1a9e3f', 'target-arrow-color': '#1a9e3f', width: 2.5 } },
  { selector: 'edge.updated', style: { 'line-color': '#f08c00', 'target-arrow-color': '#f08c00', width: 2.5 } },
  { selector: 'edge.deleted', style: { 'line-color': '#d62828', 'target-arrow-color': '#d62828', 'line-style': 'dashed', width: 2.5 } },
  { selector: 'edge:selected', style: { 'line-color': '#1d2330', 'target-arrow-color': '#1d2330', width: 2.5 } },
  // Crowded views label only the nodes that matter (see `updateLabels`); the others show
  // theirs under the pointer, when selected, found, expanded or changed.
  { selector: 'node.quiet', style: { 'text-opacity': 0, 'text-background-opacity': 0 } },
  {
    selector: 'node.quiet.hover, node.quiet:selected, node.quiet.match, node.quiet.expanded, node.quiet.created, node.quiet.updated, node.quiet.deleted',
    style: { 'text-opacity': 1, 'text-background-opacity': 0.75, 'z-index': 10 },
  },
  { selector: 'edge.quiet', style: { 'text-opacity': 0 } },
  { selector: 'edge.quiet.hover, edge.quiet:selected', style: { 'text-opacity': 1 } },
  { selector: '.hidden-type', style: { display: 'none' } },
  { selector: '.no-highlight', style: { 'border-width': 1, 'border-color': '#ffffff', 'border-style': 'solid', 'line-color': '#aab3c0', 'target-arrow-color': '#aab3c0', width: 1.3 } },
];

/** Beyond this many nodes only the well-connected ones keep a label at all times. */
const LABEL_ALL_MAX = 60;
/** In a crowded view, nodes with at least this many drawn edges keep their label. */
const LABEL_MIN_DEGREE = 3;

/** Beyond this many nodes a force layout costs seconds (1.3-1.8 s for 221 nodes in the
 *  timing test) where rings by class take milliseconds and read as well. */
const FORCE_LAYOUT_MAX = 120;

/** Where types sit in the concentric layout: the account in the middle, users outside. */
const RING = { Account: 6, Organization: 6, Application: 5, Group: 4, UserGroup: 4, Person: 1, User: 2 };

export class GraphView {
  /** container: the element to draw in; onSelect(entity|null), onExpand(key) */
  constructor(container, { onSelect = () => {}, onExpand = () => {} } = {}) {
    this.entities = new Map();
    this.changes = new Map();
    this.pending = [];
    this.cy = window.cytoscape({
      container,
      style: STYLE,
      minZoom: 0.05,
      maxZoom: 4,
      wheelSensitivity: 0.4,
      // Big views: draw a cached bitmap while panning/zooming, and skip edges meanwhile.
      textureOnViewport: true,
      hideEdgesOnViewport: true,
      pixelRatio: 1,
    });
    this.cy.on('tap', 'node', (e) => onSelect(this.entities.get(e.target.id()) || null, e.target.id()));
    this.cy.on('tap', (e) => {
      if (e.target === this.cy) onSelect(null, null);
    });
    this.cy.on('dbltap', 'node', (e) => onExpand(e.target.id()));
    this.cy.on('mouseover', 'node, edge', (e) => e.target.addClass('hover'));
    this.cy.on('mouseout', 'node, edge', (e) => e.target.removeClass('hover'));
    this.cy.on('add remove', () => this.labelsDue());
  }

  /** Relabels once after a burst of additions or removals. */
  labelsDue() {
    if (this.labelTimer) return;
    this.labelTimer = setTimeout(() => {
      this.labelTimer = null;
      this.updateLabels();
    }, 0);
  }

  /** Small views label everything; crowded ones only nodes with LABEL_MIN_DEGREE edges. */
  updateLabels() {
    const nodes = this.cy.nodes();
    this.cy.batch(() => {
      if (nodes.length <= LABEL_ALL_MAX) {
        this.cy.elements().removeClass('quiet');
        return;
      }
      // Relationship classes (HAS, ASSIGNED) only under the pointer or when selected.
      this.cy.edges().addClass('quiet');
      for (const node of nodes) node.toggleClass('quiet', node.degree(false) < LABEL_MIN_DEGREE);
    });
  }

  has(key) {
    return this.cy.getElementById(key).nonempty();
  }

  size() {
    return { nodes: this.cy.nodes().length, edges: this.cy.edges().length };
  }

  /** Adds entities (either API form); returns the keys that were new. */
  addEntities(rows) {
    const added = [];
    const elements = [];
    for (const row of rows) {
      const e = flatEntity(row);
      if (!e || !e._key) continue;
      this.entities.set(e._key, e);
      if (this.has(e._key)) continue;
      const classes = Array.isArray(e._class) ? e._class : [e._class];
      elements.push({
        group: 'nodes',
        data: {
          id: e._key,
          label: labelOf(e),
          type: e._type,
          cls: classes.join(', '),
          colour: colourOf(e._type),
          shape: shapeOf(classes),
          ring: Math.max(0, ...classes.map((c) => RING[c] || 0)),
        },
        classes: this.changeClass(e._key),
      });
      added.push(e._key);
    }
    if (elements.length) this.cy.add(elements);
    this.flushPending();
    return added;
  }

  /** Adds relationships whose two ends are drawn; keeps the others until they are. */
  addRelationships(rels) {
    this.pending.push(...rels.map(flatRelationship));
    return this.flushPending();
  }

  flushPending() {
    const elements = [];
    const waiting = [];
    for (const r of this.pending) {
      if (this.has(r.key)) continue;
      if (this.has(r.from) && this.has(r.to)) {
        elements.push({ group: 'edges', data: { id: r.key, source: r.from, target: r.to, type: r.type, cls: r.cls }, classes: this.changeClass(r.key) });
      } else {
        waiting.push(r);
      }
    }
    // Relationships to nodes never drawn are dropped past a bound: memory stays flat.
    this.pending = waiting.slice(-20000);
    if (elements.length) this.cy.add(elements);
    return elements.length;
  }

  /** Draws a J1 query result: a list of entities or a tree. Returns the new keys. */
  addResult(result) {
    if (result.type === 'tree') {
      const added = this.addEntities(result.data.vertices || []);
      this.addRelationships(result.data.edges || []);
      return added;
    }
    if (result.type === 'list') return this.addEntities(result.data || []);
    throw new Error('a table cannot be drawn: RETURN TREE, or return entities (no RETURN, or RETURN a)');
  }

  /** key -> 'created'|'updated'|'deleted' of the last run: marks them. */
  setChanges(changes) {
    this.changes = changes;
    this.cy.batch(() => {
      this.cy.elements().removeClass('created updated deleted');
      for (const [key, change] of changes) {
        const node = this.cy.getElementById(key);
        if (node.nonempty()) node.addClass(change);
      }
    });
  }

  changeClass(key) {
    return this.changes.get(key) || '';
  }

  setHighlight(on) {
    this.cy.elements('.created, .updated, .deleted').toggleClass('no-highlight', !on);
  }

  setTypeVisible(type, visible) {
    this.cy.nodes(`[type = "${CSS.escape(type)}"]`).toggleClass('hidden-type', !visible);
  }

  clear() {
    this.cy.elements().remove();
    this.entities.clear();
    this.pending = [];
  }

  /** Lays out the whole view (force-directed when small, rings by class when big).
   *  Resolves when the layout has stopped. */
  layout() {
    this.updateLabels();
    const n = this.cy.nodes().length;
    // Longer edges as the view fills, so that labels have room.
    const edge = n > 100 ? 120 : 80;
    const options = n <= FORCE_LAYOUT_MAX
      ? {
        name: 'cose', animate: false, randomize: true, nodeRepulsion: () => 16000, idealEdgeLength: () => edge,
        numIter: 1500, padding: 30, nodeDimensionsIncludeLabels: true, nodeOverlap: 40,
      }
      : {
        name: 'concentric', animate: false, padding: 30, minNodeSpacing: 6, avoidOverlap: n < 3000,
        concentric: (node) => node.data('ring'), levelWidth: () => 1,
      };
    return this.run(this.cy.layout(options));
  }

  /** Places new nodes on a ring around `centre` (the expanded node), leaving the rest
   *  where the user has it. */
  placeAround(centre, keys) {
    const node = this.cy.getElementById(centre);
    const added = this.cy.collection(keys.map((k) => this.cy.getElementById(k)).filter((n) => n.nonempty()));
    if (!added.length) return Promise.resolve();
    if (node.empty() || this.cy.nodes().length === added.length) return this.layout();
    const p = node.position();
    const radius = Math.max(90, Math.min(600, added.length * 9));
    return this.run(added.layout({
      name: 'circle', animate: false, fit: false, radius, startAngle: 0,
      boundingBox: { x1: p.x - radius, y1: p.y - radius, w: 2 * radius, h: 2 * radius },
    }));
  }

  run(layout) {
    return new Promise((resolve) => {
      layout.one('layoutstop', () => resolve());
      layout.run();
    });
  }

  focus(key) {
    const node = this.cy.getElementById(key);
    if (node.empty()) return;
    this.cy.elements().unselect();
    node.select();
    this.cy.animate({ center: { eles: node }, zoom: Math.max(this.cy.zoom(), 1) }, { duration: 250 });
  }

  /** Selects `key` and fits the view to it with its drawn neighbours (after expanding). */
  focusNeighbourhood(key) {
    const node = this.cy.getElementById(key);
    if (node.empty()) return;
    this.cy.elements().unselect();
    node.select();
    this.cy.resize();
    const before = { zoom: this.cy.zoom(), pan: { ...this.cy.pan() } };
    this.cy.fit(node.closedNeighborhood(), 40);
    // Never zoomed in past 1.5 on a small neighbourhood.
    if (this.cy.zoom() > 1.5) this.cy.zoom({ level: 1.5, renderedPosition: node.renderedPosition() });
    const target = { zoom: this.cy.zoom(), pan: { ...this.cy.pan() } };
    // Back to where the user was, then there smoothly.
    this.cy.viewport(before);
    this.cy.animate(target, { duration: 250 });
  }

  fit() {
    // The container's size as it is now (the page's grid may have settled after start).
    this.cy.resize();
    this.cy.fit(undefined, 30);
  }

  /** Marks nodes whose label or key contains `text` (search matches). */
  markMatches(keys) {
    this.cy.nodes('.match').removeClass('match');
    for (const k of keys) this.cy.getElementById(k).addClass('match');
  }
}

/** A small SVG of a legend entry: the type's colour in its class's shape. */
export function swatch(type, classes) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('width', '16');
  svg.setAttribute('height', '16');
  svg.setAttribute('viewBox', '0 0 16 16');
  const shapes = {
    ellipse: ['circle', { cx: 8, cy: 8, r: 6.5 }],
    star: ['polygon', { points: '8,1 9.9,6 15,6 10.9,9.2 12.5,14.5 8,11.3 3.5,14.5 5.1,9.2 1,6 6.1,6' }],
    triangle: ['polygon', { points: '8,1.5 14.5,14 1.5,14' }],
    hexagon: ['polygon', { points: '4,2 12,2 15.5,8 12,14 4,14 0.5,8' }],
    'round-rectangle': ['rect', { x: 1.5, y: 3, width: 13, height: 10, rx: 3 }],
    rectangle: ['rect', { x: 1.5, y: 3, width: 13, height: 10 }],
    diamond: ['polygon', { points: '8,1 15,8 8,15 1,8' }],
    barrel: ['rect', { x: 2, y: 1.5, width: 12, height: 13, rx: 4 }],
    vee: ['polygon', { points: '1,2 8,7 15,2 8,15' }],
  };
  const [tag, attrs] = shapes[shapeOf(classes)] || shapes.ellipse;
  const shape = document.createElementNS(ns, tag);
  for (const [k, v] of Object.entries(attrs)) shape.setAttribute(k, v);
  shape.setAttribute('fill', colourOf(type));
  svg.append(shape);
  return svg;
}
