import{a,b}from"./chunk-4UIG54AL.js";import"./chunk-JECKDT7R.js";export{a as backendOf,b as default};
