-- expect: 13-recipe-unknown-field.lua:2: recipe: unknown field 'nmae'
recipe { nmae = "x" }
