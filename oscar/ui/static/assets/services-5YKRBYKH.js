import{a,b}from"./chunk-3O3YZVJF.js";import"./chunk-SX4VDLYA.js";export{a as backendOf,b as default};
