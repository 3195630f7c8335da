/* plait dashboard: editing for editors and admins (window.PlaitEdit): metadata keys, tags and aliases.
 * Nothing here is drawn for a viewer; the server refuses their writes anyway (403). */
(function () {
  "use strict";
  var P = window.Plait, h = P.h, add = P.add, enc = P.enc;

  function canEdit() { return !!(P.state.session && P.state.session.can_edit); }
  function isAdmin() { return !!(P.state.session && P.state.session.is_admin); }
  function status(id) { return h("span", { "class": "muted small", id: id, role: "status" }); }
  function failed(where) { return function (err) { where.textContent = err.message; where.className = "error small"; }; }

  /* Buttons beside one alias: move it here (on a version page) or remove it. */
  function aliasActions(alias, name, version, done) {
    if (!canEdit()) return "";
    var locked = alias.protected && !isAdmin();
    var note = status("alias-status-" + alias.alias);
    var buttons = [];
    if (version && version.number !== alias.number) {
      buttons.push(h("button", { type: "button", "class": "small", "data-move": alias.alias, disabled: locked, title: locked ? "protected: only an admin moves it" : "",
        onclick: function () {
          P.send("/api/artifacts/" + enc(name) + "/aliases", "POST", { alias: alias.alias, number: version.number }).then(done).catch(failed(note));
        } }, "move here"));
    }
    buttons.push(h("button", { type: "button", "class": "small", "data-remove": alias.alias, disabled: locked, title: locked ? "protected: only an admin removes it" : "",
      onclick: function () {
        P.api("/api/artifacts/" + enc(name) + "/aliases/" + enc(alias.alias), { method: "DELETE" }).then(done).catch(failed(note));
      } }, "remove"));
    return h("span", { "class": "buttons" }, buttons, note);
  }

  /* A form to add an alias (or move one) to a version. */
  function aliasForm(name, version, done) {
    if (!canEdit()) return null;
    var alias = h("input", { type: "text", id: "alias-name", placeholder: "alias, e.g. production", "aria-label": "alias" });
    var number = h("input", { type: "number", id: "alias-version", min: "0", value: version ? version.number : "", placeholder: "version", "aria-label": "version number" });
    var note = status("alias-status");
    return h("form", { "class": "controls", id: "alias-form", onsubmit: function (ev) {
      ev.preventDefault();
      note.textContent = ""; note.className = "muted small";
      P.send("/api/artifacts/" + enc(name) + "/aliases", "POST", { alias: alias.value.trim(), number: +number.value }).then(done).catch(failed(note));
    } }, alias, version ? null : number, h("button", { type: "submit", id: "alias-set" }, version ? "set on v" + version.number : "set"), note);
  }

  /* A form to set or remove one metadata key (the value is JSON when it parses, else text). */
  function metadataForm(v, base, done) {
    if (!canEdit()) return null;
    var key = h("input", { type: "text", id: "meta-key", placeholder: "key", "aria-label": "metadata key" });
    var value = h("input", { type: "text", id: "meta-value", placeholder: "value (JSON or text)", "aria-label": "metadata value" });
    var note = status("meta-status");
    function send(body) {
      note.textContent = ""; note.className = "muted small";
      P.send(base + "/metadata", "PATCH", body).then(done).catch(failed(note));
    }
    return h("form", { "class": "controls", id: "meta-form", onsubmit: function (ev) {
      ev.preventDefault();
      var parsed;
      try { parsed = JSON.parse(value.value); } catch (e) { parsed = value.value; }
      var set = {}; set[key.value.trim()] = parsed;
      send({ set: set });
    } }, key, value, h("button", { type: "submit", id: "meta-set" }, "set key"),
      h("button", { type: "button", id: "meta-remove", onclick: function () { send({ remove: [key.value.trim()] }); } }, "remove key"), note);
  }

  /* A button that takes one tag off a version. */
  function tagRemove(tag, base, done) {
    if (!canEdit()) return null;
    return h("button", { type: "button", "class": "small tag-remove", "data-untag": tag, title: "remove tag " + tag, "aria-label": "remove tag " + tag,
      onclick: function () {
        var note = document.getElementById("tag-status");
        P.send(base + "/tags", "PATCH", { remove: [tag] }).then(done).catch(failed(note));
      } }, "\u00d7");
  }

  /* A form to put tags on a version (several at once, separated by spaces or commas). */
  function tagForm(base, done) {
    if (!canEdit()) return null;
    var input = h("input", { type: "text", id: "tag-name", placeholder: "tags, e.g. reviewed eu", "aria-label": "tags to add" });
    var note = status("tag-status");
    return h("form", { "class": "controls", id: "tag-form", onsubmit: function (ev) {
      ev.preventDefault();
      note.textContent = ""; note.className = "muted small";
      var tags = input.value.split(/[\s,]+/).filter(Boolean);
      P.send(base + "/tags", "PATCH", { add: tags }).then(done).catch(failed(note));
    } }, input, h("button", { type: "submit", id: "tag-add" }, "add tags"), note);
  }

  window.PlaitEdit = { aliasActions: aliasActions, aliasForm: aliasForm, metadataForm: metadataForm, tagForm: tagForm, tagRemove: tagRemove };
})();
